#!/usr/bin/env bash
#! Starts the local stack, runs the end-to-end tests against it, and stops it again,
#! whatever the tests did.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
trap 'infra/down.sh' EXIT
infra/up.sh
set -a; . .local/stack.env; set +a
cargo test -p e2e "$@"
# The official WriftAI Python client against the simulator.
.local/venv/bin/python -m pytest -q infra/tests/stack
