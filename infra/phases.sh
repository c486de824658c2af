#!/usr/bin/env bash
#! Runs make targets in order, timing each, and prints how long each took at the end,
#! also when one fails (which stops the run). A phase `a+b` runs targets a and b side by
#! side. `make test` is `infra/phases.sh install+compile unit+template+e2e`: the unit
#! tests run beside the end-to-end tests, which spend their time waiting on the stack.
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
    # `a+b`: the targets side by side (the install fetches while the compiler computes;
    # the template checks run while the end-to-end stack starts), the phase failing if
    # either does. The last one's output is shown as it comes, each other one's whole
    # once it ended, so that none is interleaved.
    parts=(${phase//+/ })
    last=${parts[-1]}
    pids=() logs=()
    mkdir -p .local/logs
    for part in "${parts[@]::${#parts[@]}-1}"; do
      log=.local/logs/phase-$part.log
      make --no-print-directory "$part" >"$log" 2>&1 &
      pids+=($!) logs+=("$log")
    done
    make --no-print-directory "$last"
    status=$?
    for i in "${!pids[@]}"; do
      wait "${pids[$i]}" || status=$?
      echo "== output of ${logs[$i]#.local/logs/phase-}" | sed 's/\.log$//'
      cat "${logs[$i]}"
    done
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
