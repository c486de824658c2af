#!/usr/bin/env bash
#! `make release-check` (CI runs it): what a release needs, checked without one.
#! - the engine's docs build with warnings denied, doctests included (`make test` runs them);
#! - every publishable crate packages as crates.io would take it (`cargo publish
#!   --dry-run --workspace`: manifests, files, the crates' versions pinned to each other);
#!   not built from the packages (`--no-verify`): `make template-check` builds a project
#!   on the engine;
#! - one version: the workspace's, the pins, the engine a project names, and a section of
#!   CHANGELOG.md for it;
#! - `cargo semver-checks` of the engine against the last release (tag `vX.Y.Z`), once
#!   there is one: a change that breaks its API must come with a major version (a minor
#!   one before 1.0).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
RUSTDOCFLAGS="-D warnings" cargo doc --quiet --no-deps --all-features -p wriftai-hooks
echo "release-check: the engine's docs build with warnings denied"
cargo publish --quiet --dry-run --workspace --no-verify --allow-dirty 2>&1 | grep -v "aborting upload due to dry run" || true
cargo publish --quiet --dry-run --workspace --no-verify --allow-dirty >/dev/null 2>&1
echo "release-check: every publishable crate packages"
version=$(sed -n 's/^version = "\([^"]*\)"$/\1/p' Cargo.toml | head -n 1)
pins=$(grep -ho '"=[0-9][^"]*"' Cargo.toml shared/Cargo.toml infra/*/Cargo.toml lab/*/Cargo.toml | sort -u)
[ "$pins" = "\"=$version\"" ] || { echo "release-check: the pins are $pins, the version $version" >&2; exit 1; }
grep -q "^## \[$version\]" CHANGELOG.md || { echo "release-check: CHANGELOG.md has no section ## [$version]" >&2; exit 1; }
echo "release-check: one version, $version, pinned everywhere and in CHANGELOG.md"
release=$(git tag -l 'v[0-9]*' --sort=-v:refname | head -n 1)
if [ -z "$release" ]; then
  echo "release-check: no release tagged yet (vX.Y.Z): no API to compare the engine's with"
  exit 0
fi
semver="$root/.local/cargo/bin/cargo-semver-checks"
if [ ! -x "$semver" ]; then
  echo "install: cargo-semver-checks (.local/cargo)"
  cargo install --quiet --locked --root "$root/.local/cargo" cargo-semver-checks --version 0.51.0
fi
PATH="$root/.local/cargo/bin:$PATH" cargo semver-checks --package wriftai-hooks --all-features --baseline-rev "$release"
echo "release-check: the engine's API against $release: no breaking change beyond what $version allows"
