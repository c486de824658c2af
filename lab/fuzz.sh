#!/usr/bin/env bash
#! `make fuzz`: installs cargo-fuzz into .local/cargo (once), then fuzzes the receiver's
#! request handling (lab/fuzz, target `check`) for FUZZ_SECS (default 120) in a debug
#! build, and prints how many executions it made. A crash leaves its input in
#! lab/fuzz/artifacts/check/: turn it into a regression test in shared/tests/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$root/.local/cargo/bin:$PATH"
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz into .local/cargo"
  cargo install --quiet --locked --root .local/cargo cargo-fuzz
fi
secs=${FUZZ_SECS:-120}
mkdir -p lab/fuzz/corpus/check
# cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP lets this stable toolchain take them.
# --dev: a debug build, as everything on this shared machine; no sanitizer: no unsafe here.
set +e
RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir lab/fuzz --dev --sanitizer none check lab/fuzz/corpus/check lab/fuzz/seeds/check -- \
  -max_total_time="$secs" -max_len=8192 -print_final_stats=1 >"$root/.local/fuzz.log" 2>&1
status=$?
set -e
grep -E '^(INFO: (Loaded|Running)|#[0-9]+ +(INITED|DONE)|Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss|SUMMARY|==[0-9]+==)|panicked' \
  "$root/.local/fuzz.log" || true
[ "$status" = 0 ] || { echo "fuzz: failed (exit $status); full log in .local/fuzz.log, inputs in lab/fuzz/artifacts/check/" >&2; tail -n 30 "$root/.local/fuzz.log" >&2; }
exit "$status"
