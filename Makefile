# The two commands that matter: `make dev` (run it locally) and `make test`.
# `make help` lists every target.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
VENV := .local/venv/bin
.DEFAULT_GOAL := help

.PHONY: help dev test install compile unit template e2e build ci up down create register deploy hooks lint
# PROJECT, REGION, ACT_ON_STATUSES.
include project.mk
# The tests beside the code, and the end-to-end tests (each crate's tests/) on the local
# stack. {% comment %}
# This repository: the lab is built by its own targets only (lab/lab.mk), and the
# engine's end-to-end suite (infra/e2e) needs the local stack: make e2e runs it. Its
# many unit tests wait on sockets and child processes more than they compute: nextest
# runs four at once (the doctests apart, which it does not run).
LAB := --exclude bench --exclude fault-proxy --exclude chaos
STACK_TESTS := --exclude e2e
UNIT_TESTS := cargo nextest run --workspace $(LAB) $(STACK_TESTS) --test-threads 4 --no-fail-fast
DOC_TESTS := cargo test --doc --workspace $(LAB) $(STACK_TESTS)
E2E := WORKER_FUNCTION=test-worker LOCAL_GLUE=0 infra/e2e.sh infra/e2e/run.sh
# {% endcomment %}
UNIT_TESTS ?= cargo test --workspace
E2E ?= infra/e2e.sh
STAGE ?= default
STACK := $(PROJECT)-$(if $(filter default,$(STAGE)),dev,$(STAGE))
# SAM and cargo-lambda from the project's virtualenv, whose python has zig for the
# arm64 cross-build.
SAM := PATH="$(CURDIR)/$(VENV):$$PATH" SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(VENV)/sam

help: ## List the targets.
	@awk -F ':.*## ' '/^[a-z0-9-]+:.*## / { printf "  make %-9s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

dev: ## Run it all locally in the foreground; the functions reload when you save. Ctrl-C stops it.
	infra/dev.sh

test: ## Unit tests, template checks, end-to-end tests on the local stack; times each phase.
	infra/phases.sh install+compile unit+template+e2e

install: ## Local tooling into .local/ (virtualenv with cargo-lambda, moto, SAM; DynamoDB Local).
	infra/install.sh

compile: ## The debug build every test phase runs: the tests, the end-to-end tests, the binaries.
	cargo test --workspace $(LAB) --no-run
	cargo test --workspace $(LAB) --no-run --test '*'
	cargo build --bins

unit: ## The tests beside the code (your work's on the in-memory context); the template's Python checks.
	$(UNIT_TESTS)
	$(DOC_TESTS)
	cargo build --bins
	$(VENV)/python -m pytest -q infra/tests --ignore=infra/tests/stack

template: ## cfn-lint (informational checks too) and sam validate of template.yaml.
	$(VENV)/cfn-lint --include-checks I -- template.yaml
	$(SAM) validate --lint

e2e: ## End-to-end tests (each crate's tests/) on the local stack, which it starts and stops.
	$(E2E)

build: ## The deployable build (CI runs it): sam build of the three functions for arm64, checked.
	infra/build.sh

ci: ## What CI checks beyond `make test`: the deployable build, which builds the AWS SDK once.
	$(MAKE) build
	@# sam build's three cargo runs on this target directory made one aws-sdk-dynamodb: the
	@# functions' dependencies resolve alike (give an SDK crate you add the engine's features).
	@builds=$$(find "$${CARGO_TARGET_DIR:-target}/aarch64-unknown-linux-gnu/release/.fingerprint" -maxdepth 1 -name 'aws-sdk-dynamodb-*' | wc -l); \
	  test "$$builds" = 1 || { echo "ci: $$builds builds of aws-sdk-dynamodb in one sam build (expected 1)" >&2; exit 1; }

deploy: build ## Deploy the stack <PROJECT>-dev (STAGE=prod: <PROJECT>-prod) to REGION; the first time asks its questions.
	@# Guided until this stage's own deploy parameters hold the required secret's ARN; the
	@# guided run offers project.mk's values, and saves the answers in samconfig.toml.
	@if awk '/^\[/ { sect = ($$0 == "[$(STAGE).deploy.parameters]") } sect && /AccessTokenSecretArn/ { found = 1 } END { exit !found }' samconfig.toml; then \
	  $(SAM) deploy --config-env $(STAGE) --stack-name $(STACK) --region $(REGION); \
	else \
	  $(SAM) deploy --guided --config-env $(STAGE) --stack-name $(STACK) --region $(REGION) \
	    --parameter-overrides "ProjectName=$(PROJECT) ActOnStatuses=$(ACT_ON_STATUSES)"; \
	fi

up: ## Start the local stack in the background (endpoints in .local/stack.env).
	infra/up.sh

down: ## Stop what `make up` started.
	infra/down.sh

create: ## Create a prediction through WriftAI (the simulator locally): make create MODEL=owner/name INPUT='{...}'
	@test -n "$(MODEL)" || { echo "usage: make create MODEL=owner/name INPUT='{...}'" >&2; exit 2; }
	@set -a; . .local/stack.env; set +a; .local/tools/bin/hooks create --model "$(MODEL)" --input '$(or $(INPUT),{})'

register: ## Register a prediction as ours: make register ID=<prediction-id>
	@test -n "$(ID)" || { echo "usage: make register ID=<prediction-id>" >&2; exit 2; }
	@set -a; . .local/stack.env; set +a; .local/tools/bin/hooks register "$(ID)"

hooks: ## The hooks CLI on the local stack: make hooks ARGS='status' (inspect <id>, replay <id>, redrive)
	@set -a; . .local/stack.env; set +a; .local/tools/bin/hooks $(ARGS)

lint: ## cargo fmt --check and clippy on the whole workspace.
	cargo fmt --check
	cargo clippy --workspace --all-targets -- -D warnings

# `make help` lists the targets above, each with what it does. {% comment %}
# This repository's CI checks more, first: the workspace-hack crate matches
# the dependencies (one build of the SDK everywhere); the crates are publishable and their
# docs build; the lab's fault and chaos tests; a project made from this checkout by
# `cargo lambda new` passing its own checks, and taking a newer engine on one line.
ci: hakari-verify release-check verify template-check

.PHONY: hakari hakari-verify
hakari: ## After changing a dependency: regenerate infra/workspace-hack (one build of the AWS SDK for every build).
	infra/hakari.sh generate

hakari-verify:
	infra/hakari.sh verify

# The lab's targets (verify, template-check, bench, chaos, load, fuzz): this
# repository's own verification, never deployed, and not part of a project made from it.
include lab/lab.mk
# {% endcomment %}
