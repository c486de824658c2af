#!/usr/bin/env bash
#! `make bench`: builds the functions and the harness in release, measures them under
#! the Runtime API harness (null backend, then the local stack), and writes one run's
#! tables to docs/benchmarks.md with the command, the machine and the date. Not part of
#! `make test`; takes a while (two release builds on a fresh clone).
#! Knobs: BENCH_N (warm invocations, 1000), BENCH_ARM64=1 (arm64 zips through cargo
#! lambda: a second release build), BENCH_INCREMENTAL=0 (skip the incremental build),
#! BENCH_SIM_RATE_LIMIT (simulator requests/s for the reconciler run, 100),
#! BENCH_SETTLE_SECS (a pause after the builds, 15), and the
#! stack's ports (DDB_PORT, SQS_PORT, SIM_PORT, LAMBDA_PORT) as for infra/up.sh.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=.local/bench
results=$out/results.jsonl
mkdir -p "$out"
n=${BENCH_N:-1000}
bench=target/release/bench
# docs/benchmarks.md: one run, its command, machine and date. `lab/bench.sh --report`
# writes it again from the last run's lines.
write_report() {
  {
    echo "# Benchmarks"
    echo
    echo "One run of \`make bench\` (\`lab/bench.sh\`, BENCH_N=$n). Regenerate with \`make bench\`."
    echo
    echo "- date: $(date -u '+%F %H:%M UTC')"
    echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo) memory, $(uname -sr)"
    echo "- toolchain: $(rustc --version); Python peer: $("$root/.local/bench-venv/bin/python" --version), $("$root/.local/bench-venv/bin/pip" list 2>/dev/null | grep -iE '^(aws[-_]lambda[-_]powertools|awslambdaric|boto3) ' | tr -s ' ' | paste -sd, - | sed 's/,/, /g')"
    echo "- release profile: $(sed -n '/^\[profile.release\]/,/^\[/p' Cargo.toml | grep -E '^[a-z-]+ *=' | paste -sd';' -)"
    echo
    cat lab/bench/METHOD.md
    echo
    "$bench" report "$results"
  } >docs/benchmarks.md
  "$bench" report "$results"
  echo "bench: wrote docs/benchmarks.md (raw lines in $results, logs in $out/logs)"
}
if [ "${1:-}" = "--report" ]; then
  write_report
  exit 0
fi
infra/install.sh --venv bench-venv lab/bench/requirements.txt
: >"$results"

figure() { # name, value[, extra json fields]
  printf '{"kind":"figure","name":"%s","value":"%s"%s}\n' "$1" "$2" "${3:+,$3}" >>"$results"
}
timed() { # seconds a command took; its output goes to $out/build.log
  local start=$SECONDS
  "$@" >>"$out/build.log" 2>&1
  echo $((SECONDS - start))
}

# Builds. A clean release build is timed only when target/release is empty; its figure
# is kept in $out/clean-build.txt so later runs can still quote it (with its date).
# The worker is measured as the test worker (infra/test-worker): the production worker's code
# plus the `sleep_ms` hook that stands for slow work, which production does not have.
functions=(-p receiver -p worker -p reconciler -p test-worker)
if [ ! -d target/release/.fingerprint ]; then
  secs=$(timed cargo build --release "${functions[@]}")
  echo "${secs} s (measured $(date -u +%F))" >"$out/clean-build.txt"
else
  timed cargo build --release "${functions[@]}" >/dev/null
fi
[ -f "$out/clean-build.txt" ] && figure "clean release build, three functions (cargo build --release)" "$(cat "$out/clean-build.txt")"
# Before the harness's build: alternating the two invocations swaps some shared
# dependencies' artifacts, and the figure would include rebuilding them.
if [ "${BENCH_INCREMENTAL:-1}" = 1 ]; then
  touch shared/src/receiver/handler.rs
  figure "incremental release build, receiver after touching the engine's receiver/handler.rs" "$(timed cargo build --release -p receiver) s"
fi
# The harness builds apart: sharing a cargo invocation would unify its features (axum's
# hyper server) into the functions' dependencies and change what is measured.
figure "release build of the harness and hello-world after the functions" "$(timed cargo build --release -p bench) s"

# Let the machine settle: the builds leave gigabytes of dirty pages whose writeback
# would land in the first measurements.
sync
sleep "${BENCH_SETTLE_SECS:-15}"

peer=(env PYTHONPATH="$root/lab/bench/peer" "$root/.local/bench-venv/bin/python" -m awslambdaric peer.handler)
run() { "$bench" "$@" | tee -a "$results"; }

# 1. Null backend: the functions' own cost.
run invoke --name hello-world --backend null --n "$n" --cold 15 -- target/release/bench-hello
run invoke --name receiver --backend null --n "$n" --cold 15 -- target/release/receiver
# Every delivery a signed duplicate of done work: one conditional write that fails.
run invoke --name receiver --backend repeats --n "$n" --cold 5 -- target/release/receiver
run invoke --name python-peer --backend null --n "$n" --cold 5 -- "${peer[@]}"
# The init ratio against the lower bound, from cold starts taken in turn.
run init --name hello-world --vs receiver --cold 41 -- target/release/bench-hello :: target/release/receiver
run invoke --name worker-batch1 --backend null --event sqs --batch 1 --sleep-ms 200 --n 20 -- target/release/test-worker
run invoke --name worker-batch10 --backend null --event sqs --batch 10 --sleep-ms 200 --n 20 -- target/release/test-worker
run invoke --name reconciler --backend null --event schedule --n 50 --cold 5 -- target/release/reconciler

# 2. The local stack: DynamoDB Local, moto, the simulator (rate-limited); no glue and
# no `cargo lambda watch`, so nothing but the harness invokes the functions.
trap 'infra/down.sh >/dev/null 2>&1 || true' EXIT
LOCAL_GLUE=0 LOCAL_FUNCTIONS=0 SIM_RATE_LIMIT=${BENCH_SIM_RATE_LIMIT:-100} infra/up.sh
set -a; . .local/stack.env; set +a
export SIM_RATE_LIMIT=${BENCH_SIM_RATE_LIMIT:-100}
run invoke --name receiver --backend stack --n 300 -- target/release/receiver
run invoke --name python-peer --backend stack --n 300 -- "${peer[@]}"
# The reconciler before the load: the load registers more predictions than it uses,
# and they would stay unfinished for the reconciler to find.
run reconcile --count 10000 -- target/release/reconciler
# The production worker streaming a 50 MB output file to the bucket (moto's S3).
# The harness serves the file on 127.0.0.1, at a port of its own.
OUTPUT_URL_HOSTS=127.0.0.1 run copy --name worker --bytes 50000000 -- target/release/worker
run load --instances "$(nproc)" --seconds 10 --max 20000 -- target/release/receiver
infra/down.sh
trap - EXIT

# 3. Zip sizes: what `cargo lambda build --output-format zip` ships (one `bootstrap`).
for f in receiver worker reconciler; do
  if [ "${BENCH_ARM64:-0}" = 1 ]; then
    PATH="$root/.local/venv/bin:$PATH" cargo lambda build --release --arm64 --output-format zip -p "$f" >>"$out/build.log" 2>&1
    zip_file=target/lambda/$f/bootstrap.zip; arch=arm64
  else
    zip_file=$out/$f.zip; arch="x86_64 host build"
    rm -f "$zip_file"
    python3 -c 'import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z: z.write(sys.argv[2], "bootstrap")' "$zip_file" "target/release/$f"
  fi
  bytes=$(stat -c %s "$zip_file")
  figure "$f zip ($arch)" "$(awk "BEGIN{printf \"%.2f MB (%d bytes)\", $bytes/1048576, $bytes}")" "\"zip_bytes\":$bytes"
done


write_report
