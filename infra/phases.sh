#!/usr/bin/env bash
#! Runs make targets in order, timing each, and prints how long each took at the end,
#! also when one fails (which stops the run). A phase `a+b` runs targets a and b side by
#! side. `make test` is `infra/phases.sh install+compile unit template e2e`.
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
  if [[ $phase == *+* ]]; then
    # `a+b`: the targets side by side (the install fetches while the compiler computes),
    # the phase failing if either does.
    pids=()
    for part in ${phase//+/ }; do
      make --no-print-directory "$part" &
      pids+=($!)
    done
    status=0
    for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
  else
    make --no-print-directory "$phase"
    status=$?
  fi
  report+=("$phase" "$((SECONDS - start))")
  if [ "$status" != 0 ]; then
    report+=("($phase failed)" "")
    summary
    exit "$status"
  fi
done
report+=("total" "$((SECONDS - start_all))")
summary
