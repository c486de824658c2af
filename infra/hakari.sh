#!/usr/bin/env bash
#! The workspace-hack crate (infra/workspace-hack), with cargo hakari, installed once into
#! .local/cargo. `infra/hakari.sh generate` rewrites it after a dependency changed (make
#! hakari); `infra/hakari.sh verify` checks it is up to date (CI).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
version=0.9.39
bin="$root/.local/cargo/bin/cargo-hakari"
if [ ! -x "$bin" ] || ! "$bin" --version | grep -q "$version"; then
  echo "install: cargo-hakari $version (.local/cargo)"
  cargo install --quiet --locked --root "$root/.local/cargo" cargo-hakari --version "$version"
fi
export PATH="$root/.local/cargo/bin:$PATH"
case "${1:-}" in
  generate) cargo hakari generate && cargo hakari manage-deps -y ;;
  verify) cargo hakari generate --diff && cargo hakari manage-deps --dry-run && cargo hakari verify ;;
  *) echo "usage: infra/hakari.sh generate|verify" >&2; exit 2 ;;
esac
