#!/usr/bin/env bash
#! `make verify`: what CI checks beyond `make test`, from the lab. The lab crates' own
#! tests, then a local stack with the fault proxy between the functions and the
#! emulators: the fault-injection tests (lab/chaos/tests/faults.rs), and with the queue
#! -> worker mapping running, the short chaos run (60 predictions under every fault at
#! once, judged from the table). The stack is stopped after, whatever happened.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo test -p fault-proxy -p bench -p chaos --lib --bins
trap 'infra/down.sh' EXIT
FAULTS=1 WORKER_FUNCTION=test-worker LOCAL_GLUE=0 RECONCILE_EVERY_SECS=2 RECONCILE_MIN_AGE_SECS=3 \
  RECONCILE_OVERDUE_SECS=20 infra/up.sh
set -a; . .local/stack.env; set +a
cargo test -p chaos --test faults
infra/glue.sh
cargo test -p chaos --test chaos -- --nocapture
