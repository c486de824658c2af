#!/usr/bin/env bash
#! `make dev`: the local stack in the foreground, as a development loop. Builds (with
#! cargo's progress shown), starts everything, creates one prediction through the
#! simulator, shows its signed webhooks going in, what was recorded and what the worker
#! made of it, then follows the functions' and the simulator's logs until it is stopped:
#! Ctrl-C, a SIGTERM to it or to `make`, or `make down` from another terminal. Every way
#! stops the whole stack. The functions run under `cargo lambda watch`, which rebuilds
#! one when its source changes: save `functions/worker/src/work.rs` and the next
#! prediction runs the new code.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# The engine's tools, as infra/install.sh installs them.
tools="$root/.local/tools/bin"
# Another stack is this one's to leave alone, not to stop.
if compgen -G "$root/.local/pids/*.pid" >/dev/null; then
  echo "dev: a local stack is already running (make down stops it)" >&2
  exit 1
fi

# Each step runs in the background and is waited for, so a signal is handled at once
# (bash holds a trap until a foreground command ends). What is running, to stop with the
# stack: the step, and the two watchdogs below.
step= watchdogs=()
stop() {
  local status=$?
  # Stopping is not interrupted: a second Ctrl-C must not leave half the stack up.
  trap '' INT TERM HUP
  trap - EXIT
  kill "$step" "${watchdogs[@]}" 2>/dev/null || true
  infra/down.sh
  exit "$status"
}
trap stop EXIT INT TERM HUP
run() { "$@" & step=$!; wait "$step"; }

# `make` does not pass a SIGTERM on to its recipe: when the parent goes, so does this.
parent=$PPID me=$$
(while kill -0 "$parent" 2>/dev/null; do sleep 1; done; kill -TERM "$me" 2>/dev/null) &
watchdogs+=($!)

# The reconciler every 30 s: often enough to see it recover what webhooks miss, rarely
# enough not to fill the window (a run that finds nothing logs nothing).
WATCH=1 RECONCILE_EVERY_SECS=${RECONCILE_EVERY_SECS:-30} run infra/up.sh --persist
set -a; . .local/stack.env; set +a
export PATH="$root/.local/venv/bin:$PATH"
# `make down` in another terminal stopped the stack: this ends too.
(while [ -f .local/stack.env ]; do sleep 1; done; kill -TERM "$me" 2>/dev/null) &
watchdogs+=($!)

echo
echo "== create a prediction through our client (WriftAI simulator, signed webhooks)"
prediction=$("$tools/hooks" create --model acme/echo --input '{"prompt": "hello from make dev"}')
echo "  $prediction"
id=$(python -c 'import json,sys; print(json.loads(sys.argv[1])["id"])' "$prediction")
echo "== what WriftAI delivered to the receiver"
run python infra/peek.py deliveries "$id"
echo "== what the receiver recorded, and what the worker did"
run python infra/peek.py worked "$id"
cat <<TEXT

Receiver: $RECEIVER_URL   WriftAI: $WRIFTAI_API_BASE_URL   (all endpoints: .local/stack.env)
The loop: edit functions/worker/src/work.rs (or the receiver) and save; the function is
rebuilt and the next prediction runs the new code. In another terminal:
  make create MODEL=acme/echo INPUT='{"prompt":"hi"}'
  make hooks ARGS='inspect <id>'
Logs follow (functions, simulator, queue mapping). Ctrl-C stops everything (or make down).
TEXT
run tail -n 0 -F .local/logs/lambda.log .local/logs/wriftai-sim.log .local/logs/sqs-mapping.log
