# The lab's targets, included by the Makefile: this repository's own verification.
.PHONY: verify sim bench chaos scale load fuzz template-check template-files release-check

verify: ## The lab's checks (CI runs them after `test`): fault-injection tests, the short chaos run.
	lab/verify.sh

sim: ## The lab: weeks of the stack's life on a virtual clock (SEED, PREDICTIONS, DAYS, SHARDS); prints its report, fails on a broken invariant.
	cargo run --quiet --profile sim -p simulation

template-check: install ## The lab: make a project with `cargo lambda new` from this checkout, and run its checks.
	lab/template-check.sh

bench: ## The lab: init, latency, memory, zips and builds against hello-world and a Python peer; writes docs/benchmarks.md. Slow.
	lab/bench.sh

chaos: install ## The lab: the long chaos run (2,000 predictions, AWS faults, worker crashes); prints its summary.
	lab/chaos.sh

scale: install ## The lab: SCALE_RATE predictions/s through DynamoDB's per-partition limits scaled by K (10,000/s on AWS); prints its summary.
	lab/scale.sh

load: install ## The lab: the receiver under sustained signed POSTs for LOAD_SECS (30); prints rate and latencies.
	lab/load.sh

fuzz: ## The lab: fuzz the receiver's request checks for FUZZ_SECS (120); installs cargo-fuzz into .local/cargo.
	lab/fuzz.sh

template-files: ## The lab: CargoLambda.toml leaves behind every file that is not a project's (after adding or moving one).
	python3 lab/template-files.py

release-check: ## The lab: docs with warnings denied, every crate packages, one version, semver against the last release.
	lab/release-check.sh
