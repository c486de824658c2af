#!/usr/bin/env bash
#! `make load`: its own local stack (receiver only, through the fault proxy, with
#! LAMBDA_CONCURRENCY instances), the load generator (lab/chaos/src/bin/load.rs) for
#! LOAD_SECS, its summary printed; the stack is stopped after. LOAD_FAULTS=1 also turns
#! on a little AWS throttling and resets: the 5xx they cause must not exceed them.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
trap 'infra/down.sh' EXIT
LOCAL_GLUE=0 LAMBDA_CONCURRENCY=${LAMBDA_CONCURRENCY:-1} lab/faulty-up.sh
set -a; . .local/stack.env; set +a
if [ "${LOAD_FAULTS:-0}" = 1 ]; then
  curl -sf -X PUT "$FAULT_PROXY_URL/_faults" -d '{"seed": 3, "rules": [
    {"operation": "*", "kind": "throttle", "rate": 0.02}, {"operation": "*", "kind": "reset", "rate": 0.01}]}' >/dev/null
fi
cargo run --quiet -p chaos --bin load
