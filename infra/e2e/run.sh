#!/usr/bin/env bash
#! The engine's end-to-end suite, against the stack `make e2e` started for it here
#! (`WORKER_FUNCTION=test-worker LOCAL_GLUE=0 infra/e2e.sh infra/e2e/run.sh`): the tests
#! of infra/e2e, and the worker's own (functions/worker/tests).
set -euo pipefail
cd "$(dirname "$0")/../.."
# This repository's suite, in two phases: first the receiver's tests, which
# read the work queue themselves; then, with the queue -> worker mapping and the
# reconciler's schedule running, the tests of the whole pipeline. The queue invokes the
# test worker (infra/test-worker): the worker's code plus crash hooks and counted writes;
# one test checks that the production worker honours no hook. The trace tests read the
# functions' JSON lines from .local/logs/lambda.log.
# The default members and e2e in one selection: cargo resolves the same features as
# for `cargo test` and the running stack, so the debug build of the SDK is reused (with
# `-p e2e` alone tokio's features differ, and the SDK builds again).
tests=(cargo test --workspace --exclude bench --exclude fault-proxy --exclude chaos)
"${tests[@]}" --test adapters --test contract --test receiver --test catalogue --test round_trips --test pipeline --test production_worker --test limits
# The official WriftAI Python client against the simulator.
.local/venv/bin/python -m pytest -q infra/tests/stack
infra/glue.sh
# The pipeline's tests spend their time waiting on the stack (visibility timeouts, the
# reconciler's ages), each on its own predictions: all of them wait at once. The
# worker's own end-to-end test (a project's, functions/worker/tests) runs with them.
"${tests[@]}" --test work --test stack -- --test-threads 20
