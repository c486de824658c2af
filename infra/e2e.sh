#!/usr/bin/env bash
#! Starts the local stack, runs the end-to-end tests against it, and stops it again,
#! whatever the tests did. Two phases: first the receiver's tests, which read the work
#! queue themselves; then, with the queue -> worker mapping and the reconciler's
#! schedule running, the tests of the whole pipeline, and last the short chaos run.
#! The functions reach AWS through the fault proxy (FAULTS=1), which passes everything
#! through until a test (the chaos suite) gives it rules.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
trap 'infra/down.sh' EXIT
FAULTS=1 LOCAL_GLUE=0 RECONCILE_EVERY_SECS=2 RECONCILE_MIN_AGE_SECS=3 RECONCILE_OVERDUE_SECS=20 infra/up.sh
set -a; . .local/stack.env; set +a
cargo test -p e2e --test receiver --test catalogue --test round_trips --test faults --test pipeline
# The official WriftAI Python client against the simulator.
.local/venv/bin/python -m pytest -q infra/tests/stack
infra/glue.sh
cargo test -p e2e --test work
# The short chaos run: 60 predictions under every fault at once, judged from the table.
cargo test -p e2e --test chaos -- --nocapture
