#!/usr/bin/env bash
#! Starts what AWS itself does between the functions, against the running local stack:
#! the SQS event source mapping (queue -> worker) and the schedule (-> reconciler).
#! infra/up.sh runs it; infra/down.sh stops it with the rest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# The engine's tools, as infra/install.sh installs them.
tools="$root/.local/tools/bin"
pids="$root/.local/pids"
logs="$root/.local/logs"
set -a; . .local/stack.env; set +a
for name in sqs-mapping schedule; do
  if [ -e "$pids/$name.pid" ]; then echo "glue: $name already running" >&2; exit 1; fi
done
setsid "$tools/local-aws" sqs --queue-url "$QUEUE_URL" --function "$WORKER_FUNCTION" \
  --invoke-url "$LAMBDA_INVOKE_URL" >"$logs/sqs-mapping.log" 2>&1 < /dev/null &
echo $! >"$pids/sqs-mapping.pid"
setsid "$tools/local-aws" schedule --function reconciler --every-secs "$RECONCILE_EVERY_SECS" \
  --invoke-url "$LAMBDA_INVOKE_URL" >"$logs/schedule.log" 2>&1 < /dev/null &
echo $! >"$pids/schedule.pid"
echo "glue: queue -> $WORKER_FUNCTION, and reconciler every ${RECONCILE_EVERY_SECS}s"
