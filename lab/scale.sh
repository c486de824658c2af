#!/usr/bin/env bash
#! `make scale`: the local stack through the fault proxy's partition model, which holds
#! every partition key of the table and of each index to DynamoDB's limits divided by a
#! scale factor K, driven at SCALE_RATE new predictions a second (lab/chaos/tests/scale.rs)
#! for SCALE_SECS. K is 10,000 / SCALE_RATE unless SCALE_K says: what the run drives
#! stands for 10,000 predictions a second. One summary is printed; the stack is stopped
#! after. INDEX_SHARDS=1 runs the design of one index key each, for comparison.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# 5 a second is what this 2-core machine drives with its four deliveries each.
rate=${SCALE_RATE:-5}
scale=${SCALE_K:-$((10000 / rate))}
trap 'infra/down.sh' EXIT
# The reconciler at its production pace relative to the run: it finds nothing to do
# unless webhooks fail, as on AWS.
FAULT_PARTITION_SCALE=$scale FAULT_PARTITION_UNSCALED=PRED# WORKER_FUNCTION=test-worker LAMBDA_CONCURRENCY=${LAMBDA_CONCURRENCY:-2} \
  RECONCILE_EVERY_SECS=10 RECONCILE_MIN_AGE_SECS=60 RECONCILE_OVERDUE_SECS=600 RECONCILE_WORK_STALE_SECS=120 \
  lab/faulty-up.sh
set -a; . .local/stack.env; set +a
SCALE_RATE=$rate cargo test -p chaos --test scale -- --nocapture
