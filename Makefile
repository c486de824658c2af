# The two commands that matter: `make dev` (run it locally) and `make test`.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
VENV := .local/venv/bin

.PHONY: dev test unit e2e install up down register create lint chaos load fuzz

dev: ## Run the local stack in the foreground and show a prediction's events flowing.
	infra/dev.sh

test: install unit e2e ## Everything: unit tests, template checks, end-to-end tests.

install: ## Local tooling into .local/ (virtualenv, DynamoDB Local).
	infra/install.sh

unit:
	cargo test --workspace --exclude e2e
	$(VENV)/python -m pytest -q infra/tests --ignore=infra/tests/stack

e2e: ## End-to-end tests; starts and stops the local stack itself.
	infra/e2e.sh

chaos: install ## The long chaos run (2,000 predictions, AWS faults, worker crashes): prints its summary.
	infra/chaos.sh

load: install ## The receiver under sustained concurrent signed POSTs for LOAD_SECS (30): prints rate and latencies.
	infra/load.sh

fuzz: ## Fuzzes the receiver's request checks for FUZZ_SECS (120); installs cargo-fuzz into .local/cargo.
	infra/fuzz.sh

up: ## Start the local stack in the background (endpoints in .local/stack.env).
	infra/up.sh

down: ## Stop what `make up` started.
	infra/down.sh

register: ## Register a prediction as ours: make register ID=<prediction-id>
	@test -n "$(ID)" || { echo "usage: make register ID=<prediction-id>" >&2; exit 2; }
	@set -a; . .local/stack.env; set +a; cargo run --quiet -p cli -- register "$(ID)"

create: ## Create a prediction through WriftAI (the simulator locally): make create MODEL=owner/name INPUT='{...}'
	@test -n "$(MODEL)" || { echo "usage: make create MODEL=owner/name INPUT='{...}'" >&2; exit 2; }
	@set -a; . .local/stack.env; set +a; cargo run --quiet -p cli -- create --model "$(MODEL)" --input '$(or $(INPUT),{})'

lint:
	cargo fmt --check
	cargo clippy --workspace --all-targets -- -D warnings
