#!/usr/bin/env bash
#! infra/up.sh with lab/fault-proxy between the functions and the emulators: the
#! functions reach DynamoDB and SQS through the proxy (port FAULT_PORT, default 8769;
#! rules from FAULT_RULES/FAULT_SEED or PUT /_faults, its partition model from
#! FAULT_PARTITION_*), the tests and the AWS glue still talk to the emulators directly.
#! Takes infra/up.sh's settings; adds FAULT_PROXY_URL to .local/stack.env. infra/down.sh
#! stops the proxy with the rest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
port=${FAULT_PORT:-8769}
proxy="http://127.0.0.1:$port"
cargo build -p fault-proxy
FUNCTIONS_ENV="AWS_ENDPOINT_URL_DYNAMODB=$proxy AWS_ENDPOINT_URL_SQS=$proxy" LOCAL_GLUE=0 infra/up.sh "$@"
set -a; . .local/stack.env; set +a
FAULT_PROXY_PORT=$port FAULT_DYNAMODB_UPSTREAM=$AWS_ENDPOINT_URL_DYNAMODB FAULT_SQS_UPSTREAM=$AWS_ENDPOINT_URL_SQS \
  setsid "${CARGO_TARGET_DIR:-$root/target}/debug/fault-proxy" >.local/logs/fault-proxy.log 2>&1 </dev/null &
echo $! >.local/pids/fault-proxy.pid
for _ in $(seq 60); do
  curl -sf -o /dev/null "$proxy/_faults" && break
  sleep 0.5
done
curl -sf -o /dev/null "$proxy/_faults" || { tail -n 30 .local/logs/fault-proxy.log >&2; exit 1; }
echo "FAULT_PROXY_URL=$proxy" >>.local/stack.env
[ "${LOCAL_GLUE:-1}" = 0 ] || infra/glue.sh
echo "faulty-up: the functions reach the emulators through the fault proxy ($proxy)"
