#!/usr/bin/env bash
#! `make dev`: the local stack in the foreground. Shows one registered prediction's
#! webhooks going in and its work message coming out, then follows the logs until
#! Ctrl-C, which stops everything.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
trap 'infra/down.sh' EXIT
infra/up.sh --persist
set -a; . .local/stack.env; set +a
export PATH="$root/.local/venv/bin:$PATH"

id=$(cat /proc/sys/kernel/random/uuid)
echo
echo "== register prediction $id"
target/debug/hooks register "$id"
for status in pending succeeded started succeeded; do
  body="{\"id\":\"$id\",\"status\":\"$status\",\"model\":{\"owner\":\"acme\",\"name\":\"echo\"},\"input\":{\"prompt\":\"hi\"},\"output\":$([ $status = succeeded ] && echo '"hello"' || echo null)}"
  printf '== POST %-9s -> ' "$status"
  curl -s -w ' (%{http_code})\n' -X POST "$RECEIVER_URL" -H 'content-type: application/json' -d "$body"
done
echo "== queue"
python infra/peek.py
echo
echo "Receiver: $RECEIVER_URL   (endpoints in .local/stack.env; Ctrl-C stops the stack)"
tail -n 0 -F .local/logs/lambda.log
