#!/usr/bin/env bash
#! `make verify`: what CI checks beyond `make test`, from the lab. The lab crates' own
#! tests; the long simulation (100,000 predictions over 60 simulated days, docs/lab.md,
#! "The simulation"), optimized in a target directory of its own; then a local stack with the fault proxy between the functions and the
#! emulators: the fault-injection tests (lab/chaos/tests/faults.rs), and with the queue
#! -> worker mapping running, the short chaos run (60 predictions under every fault at
#! once, judged from the table). The stack is stopped after, whatever happened.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo test -p fault-proxy -p bench
cargo build --profile sim -p simulation
PREDICTIONS="${SIM_PREDICTIONS:-100000}" DAYS="${SIM_DAYS:-60}" SEED="${SEED:-1}" \
  "${CARGO_TARGET_DIR:-target}/sim/simulation"
trap 'infra/down.sh' EXIT
WORKER_FUNCTION=test-worker LOCAL_GLUE=0 RECONCILE_EVERY_SECS=2 RECONCILE_MIN_AGE_SECS=3 \
  RECONCILE_OVERDUE_SECS=20 lab/faulty-up.sh
set -a; . .local/stack.env; set +a
# One selection with the default members, as infra/e2e/run.sh does: the SDK's debug build
# that `make test` made serves these tests too.
tests=(cargo test --workspace --exclude bench --exclude fault-proxy)
"${tests[@]}" --test faults
infra/glue.sh
"${tests[@]}" --test chaos -- --nocapture
