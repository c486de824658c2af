#!/usr/bin/env bash
#! `make e2e`: starts the local stack, runs the end-to-end tests against it (the tests of
#! each crate's `tests/`: `cargo test --test '*'`), and stops it again, whatever the tests
#! did. `infra/e2e.sh COMMAND...` runs that command against the stack instead; up.sh's
#! settings (WORKER_FUNCTION, LOCAL_GLUE, ...) pass through.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# Another stack is not this run's to stop: it would be, by the trap below.
if compgen -G "$root/.local/pids/*.pid" >/dev/null; then
  echo "e2e: a local stack is already running (make down stops it)" >&2
  exit 1
fi
trap 'infra/down.sh' EXIT
# The test stack's own settings, never production's: short reconciler ages, 16 shards
# for quicker walks on DynamoDB Local, and JSON log lines (as the template's
# `LogFormat: JSON` on AWS); `make dev` keeps them text, for people.
export AWS_LAMBDA_LOG_FORMAT=JSON INDEX_SHARDS=16 RECONCILE_EVERY_SECS=2 RECONCILE_MIN_AGE_SECS=3 RECONCILE_OVERDUE_SECS=20
infra/up.sh
set -a; . .local/stack.env; set +a
if [ $# -gt 0 ]; then
  "$@"
else
  # Each test waits on the stack for its own predictions: all of them wait at once.
  cargo test --workspace --test '*' -- --test-threads 8
fi
