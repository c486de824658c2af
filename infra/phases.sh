#!/usr/bin/env bash
#! Runs make targets in order, timing each, and prints how long each took at the end,
#! also when one fails (which stops the run). `make test` is `infra/phases.sh install
#! unit template e2e`.
set -uo pipefail
cd "$(dirname "$0")/.."
report=()
summary() {
  echo
  echo "== make test phases"
  printf '  %-10s %5s s\n' "${report[@]}"
}
start_all=$SECONDS
for phase in "$@"; do
  echo "== phase: $phase"
  start=$SECONDS
  make --no-print-directory "$phase"
  status=$?
  report+=("$phase" "$((SECONDS - start))")
  if [ "$status" != 0 ]; then
    report+=("($phase failed)" "")
    summary
    exit "$status"
  fi
done
report+=("total" "$((SECONDS - start_all))")
summary
