# The two commands that matter: `make dev` (run it locally) and `make test`.
# `make help` lists every target.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
VENV := .local/venv/bin
.DEFAULT_GOAL := help

.PHONY: help dev test install unit template e2e verify build up down create register deploy hooks hakari lint bench chaos load fuzz
STAGE ?= default
# SAM and cargo-lambda from the project's virtualenv, whose python has zig for the
# arm64 cross-build.
SAM := PATH="$(CURDIR)/$(VENV):$$PATH" SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(VENV)/sam

help: ## List the targets.
	@awk -F ':.*## ' '/^[a-z0-9-]+:.*## / { printf "  make %-9s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

dev: ## Run it all locally in the foreground; the functions reload when you save. Ctrl-C stops it.
	infra/dev.sh

test: ## Unit tests, template checks, end-to-end tests on the local stack; times each phase.
	infra/phases.sh install unit template e2e

install: ## Local tooling into .local/ (virtualenv with cargo-lambda, moto, SAM; DynamoDB Local).
	infra/install.sh

unit: ## cargo test of the functions, shared and the local stack; the Python checks.
	cargo test
	cargo build --bins
	$(VENV)/python -m pytest -q infra/tests --ignore=infra/tests/stack

template: ## cfn-lint (informational checks too) and sam validate of template.yaml.
	$(VENV)/cfn-lint --include-checks I -- template.yaml
	$(SAM) validate --lint

e2e: ## End-to-end tests on the local stack, which it starts and stops.
	infra/e2e.sh

verify: ## The lab's checks (CI runs them after `test`): fault-injection tests, the short chaos run.
	lab/verify.sh

build: ## The deployable build (CI runs it): sam build of the three functions for arm64, checked.
	infra/build.sh

deploy: build ## Deploy with SAM (STAGE=default|prod); the first time asks its questions (--guided).
	@# Guided until this stage's own deploy parameters hold the required secret's ARN.
	@if awk '/^\[/ { sect = ($$0 == "[$(STAGE).deploy.parameters]") } sect && /AccessTokenSecretArn/ { found = 1 } END { exit !found }' samconfig.toml; then \
	  $(SAM) deploy --config-env $(STAGE); else $(SAM) deploy --guided --config-env $(STAGE); fi

up: ## Start the local stack in the background (endpoints in .local/stack.env).
	infra/up.sh

down: ## Stop what `make up` started.
	infra/down.sh

create: ## Create a prediction through WriftAI (the simulator locally): make create MODEL=owner/name INPUT='{...}'
	@test -n "$(MODEL)" || { echo "usage: make create MODEL=owner/name INPUT='{...}'" >&2; exit 2; }
	@set -a; . .local/stack.env; set +a; cargo run --quiet -p cli -- create --model "$(MODEL)" --input '$(or $(INPUT),{})'

register: ## Register a prediction as ours: make register ID=<prediction-id>
	@test -n "$(ID)" || { echo "usage: make register ID=<prediction-id>" >&2; exit 2; }
	@set -a; . .local/stack.env; set +a; cargo run --quiet -p cli -- register "$(ID)"

hooks: ## The hooks CLI on the local stack: make hooks ARGS='status' (inspect <id>, replay <id>, redrive)
	@set -a; . .local/stack.env; set +a; cargo run --quiet -p cli -- $(ARGS)

hakari: ## After changing a dependency: regenerate infra/workspace-hack (one build of the AWS SDK for every build).
	infra/hakari.sh generate

lint: ## cargo fmt --check and clippy on the whole workspace, lab included.
	cargo fmt --check
	cargo clippy --workspace --all-targets -- -D warnings

bench: ## The lab: init, latency, memory, zips and builds against hello-world and a Python peer; writes docs/benchmarks.md. Slow.
	lab/bench.sh

chaos: install ## The lab: the long chaos run (2,000 predictions, AWS faults, worker crashes); prints its summary.
	lab/chaos.sh

load: install ## The lab: the receiver under sustained signed POSTs for LOAD_SECS (30); prints rate and latencies.
	lab/load.sh

fuzz: ## The lab: fuzz the receiver's request checks for FUZZ_SECS (120); installs cargo-fuzz into .local/cargo.
	lab/fuzz.sh
