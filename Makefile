# The two commands that matter: `make dev` (run it locally) and `make test`.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
VENV := .local/venv/bin

.PHONY: dev test unit template e2e install up down register create lint build deploy bench chaos load fuzz
STAGE ?= default
# SAM and cargo-lambda from the project's virtualenv, whose python has zig for the
# arm64 cross-build.
SAM := PATH="$(CURDIR)/$(VENV):$$PATH" SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(VENV)/sam

dev: ## Run the local stack in the foreground and show a prediction's events flowing.
	infra/dev.sh

test: install unit template e2e ## Everything: unit tests, template checks and build, end-to-end tests.

install: ## Local tooling into .local/ (virtualenv, DynamoDB Local).
	infra/install.sh

unit:
	cargo test --workspace --exclude e2e
	cargo build --workspace --exclude e2e --bins
	$(VENV)/python -m pytest -q infra/tests --ignore=infra/tests/stack

template: ## cfn-lint, sam validate, and the arm64 release build of all three functions.
	$(VENV)/cfn-lint template.yaml
	$(SAM) validate --lint
	infra/build.sh

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

build: ## sam build: the three functions for arm64, as deployed.
	$(SAM) build --config-env $(STAGE)

deploy: build ## Deploy with SAM; the first time asks its questions (--guided).
	@if grep -q '^\[$(STAGE).deploy.parameters\]' samconfig.toml && grep -q 'AccessTokenSecretArn' samconfig.toml; then \
	  $(SAM) deploy --config-env $(STAGE); else $(SAM) deploy --guided --config-env $(STAGE); fi

bench: ## Measure the functions (init, latency, memory, zips, builds) against hello-world and a Python peer; writes BENCHMARKS.md. Slow; not part of `test`.
	infra/bench.sh

lint:
	cargo fmt --check
	cargo clippy --workspace --all-targets -- -D warnings
