#!/usr/bin/env bash
#! The long chaos run (`make chaos`): its own local stack with the fault proxy and more
#! function instances, CHAOS_PREDICTIONS (default 2,000) predictions through the chaos
#! suite (lab/chaos/tests/chaos.rs), one summary printed; the stack is stopped after.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
trap 'infra/down.sh' EXIT
# One instance per function: with --concurrency 3, cargo lambda watch 1.9.2 stopped
# serving invocations a minute into our run. Overdue only after 10 minutes: under this load a prediction can wait its turn.
WORKER_FUNCTION=test-worker LAMBDA_CONCURRENCY=${LAMBDA_CONCURRENCY:-1} RECONCILE_EVERY_SECS=3 RECONCILE_MIN_AGE_SECS=10 \
  RECONCILE_OVERDUE_SECS=600 RECONCILE_WORK_STALE_SECS=60 lab/faulty-up.sh
set -a; . .local/stack.env; set +a
CHAOS_PREDICTIONS=${CHAOS_PREDICTIONS:-2000} CHAOS_CONCURRENCY=${CHAOS_CONCURRENCY:-8} \
  cargo test -p chaos --test chaos -- --nocapture
