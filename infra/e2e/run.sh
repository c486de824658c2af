#!/usr/bin/env bash
#! The engine's end-to-end suite (`make e2e` in this repository): starts the local stack,
#! runs the tests of infra/e2e (and the worker's own, functions/worker/tests) against it,
#! and stops it again, whatever the tests did.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
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
# This repository's suite, in two phases: first the receiver's tests, which
# read the work queue themselves; then, with the queue -> worker mapping and the
# reconciler's schedule running, the tests of the whole pipeline. The queue invokes the
# test worker (infra/test-worker): the worker's code plus crash hooks and counted writes;
# one test checks that the production worker honours no hook. The trace tests read the
# functions' JSON lines from .local/logs/lambda.log.
WORKER_FUNCTION=test-worker LOCAL_GLUE=0 infra/up.sh
echo "e2e: stack up at $SECONDS s"
set -a; . .local/stack.env; set +a
# The default members and e2e in one selection: cargo resolves the same features as
# for `cargo test` and the running stack, so the debug build of the SDK is reused (with
# `-p e2e` alone tokio's features differ, and the SDK builds again).
tests=(cargo test --workspace --exclude bench --exclude fault-proxy --exclude chaos)
"${tests[@]}" --test adapters --test receiver --test catalogue --test round_trips --test pipeline --test production_worker --test limits
# The official WriftAI Python client against the simulator.
echo "e2e: receiver tests done at $SECONDS s"
.local/venv/bin/python -m pytest -q infra/tests/stack
infra/glue.sh
echo "e2e: glue at $SECONDS s"
# The pipeline's tests spend their time waiting on the stack (visibility timeouts, the
# reconciler's ages), each on its own predictions: all of them wait at once. The
# worker's own end-to-end test (a project's, functions/worker/tests) runs with them.
"${tests[@]}" --test work --test stack -- --test-threads 20
