#!/usr/bin/env bash
#! Stops exactly what infra/up.sh started, by the process groups it recorded.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
pids="$root/.local/pids"
for file in "$pids"/*.pid; do
  [ -e "$file" ] || continue
  pid=$(cat "$file")
  kill -TERM -- "-$pid" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$pid" 2>/dev/null
  rm -f "$file"
done
rm -f "$root/.local/stack.env"
echo "down: stack stopped"
