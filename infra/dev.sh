#!/usr/bin/env bash
#! `make dev`: the local stack in the foreground, as a development loop. Builds (with
#! cargo's progress shown), starts everything, creates one prediction through the
#! simulator, shows its signed webhooks going in, what was recorded and what the worker
#! made of it, then follows the logs until Ctrl-C, which stops everything. The functions
#! run under `cargo lambda watch`, which rebuilds one when its source changes: save
#! `functions/worker/src/work.rs` and the next prediction runs the new code.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# The engine's tools, as infra/install.sh installs them.
tools="$root/.local/tools/bin"
trap 'infra/down.sh' EXIT
WATCH=1 infra/up.sh --persist
set -a; . .local/stack.env; set +a
export PATH="$root/.local/venv/bin:$PATH"

echo
echo "== create a prediction through our client (WriftAI simulator, signed webhooks)"
prediction=$("$tools/hooks" create --model acme/echo --input '{"prompt": "hello from make dev"}')
echo "  $prediction"
id=$(python -c 'import json,sys; print(json.loads(sys.argv[1])["id"])' "$prediction")
echo "== what WriftAI delivered to the receiver"
python infra/peek.py deliveries "$id"
echo "== what the receiver recorded, and the worker's result record"
python infra/peek.py worked "$id"
cat <<TEXT

Receiver: $RECEIVER_URL   WriftAI: $WRIFTAI_API_BASE_URL   (all endpoints: .local/stack.env)
The loop: edit functions/worker/src/work.rs (or the receiver) and save; the function is
rebuilt and the next prediction runs the new code. In another terminal:
  make create MODEL=acme/echo INPUT='{"prompt":"hi"}'
Logs follow (functions, simulator, queue mapping, schedule). Ctrl-C stops everything.
TEXT
tail -n 0 -F .local/logs/lambda.log .local/logs/wriftai-sim.log .local/logs/sqs-mapping.log .local/logs/schedule.log
