#!/usr/bin/env bash
#! `make template-check`: makes a project from this repository as a user would, with
#! `cargo lambda new my-hooks --template <archive>` (non-interactively, so with the
#! defaults of CargoLambda.toml), and checks it:
#! - it holds its user's own files and nothing else (PROJECT_FILES of
#!   infra/tests/test_template_project.py), no `{{` or `{%` in any file cargo-lambda
#!   rendered, no relative link in its Markdown to a file it has not, and its name;
#! - its engine is this checkout's (patched in for crates.io) and so are its tools;
#! - its `make test` passes, end-to-end test included, and its `make dev` works a
#!   prediction and stops the whole stack on a SIGTERM to `make`;
#! - the upgrade drill: its engine requirement changed on one line to a newer version
#!   (this checkout's, its version bumped) builds and passes `make test` again.
#! The template is that of the last release (tag `vX.Y.Z`) when there is one, else of
#! HEAD plus the tracked files' uncommitted changes (`git stash create`).
#! It shares this checkout's target directory and tooling, so only the project's own
#! crates are built again.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
name=my-hooks
work=$(mktemp -d)
dev=
cleanup() {
  # A `make dev` still going (its own session, so its group) stops first, then its stack.
  [ -z "$dev" ] || { kill -TERM -- "-$dev" 2>/dev/null; wait "$dev" 2>/dev/null; } || true
  [ -d "$work/$name" ] && (cd "$work/$name" && infra/down.sh >/dev/null 2>&1) || true
  # TEMPLATE_CHECK_KEEP=1 keeps the project, to look into a failure.
  [ "${TEMPLATE_CHECK_KEEP:-0}" = 1 ] && echo "template-check: kept $work" || rm -rf "$work"
}
trap cleanup EXIT
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
say() { echo "template-check: $*"; }

# The template: the last release's, or the checkout's.
release=$(git -C "$root" tag -l 'v[0-9]*' --sort=-v:refname | head -n 1)
tree=${release:-$(git -C "$root" stash create)}
git -C "$root" archive -o "$work/template.zip" "${tree:-HEAD}"
(cd "$work" && "$root/.local/venv/bin/cargo-lambda" lambda new "$name" --template "$work/template.zip" -y >/dev/null)
project="$work/$name"
say "made $project from ${release:-the checkout}"

"$root/.local/venv/bin/python" - "$root" "$project" "$name" <<'EOF'
import pathlib, re, sys, tomllib

root, project, name = map(pathlib.Path, sys.argv[1:4])
sys.path.insert(0, str(root / "infra" / "tests"))
from test_template_project import PROJECT_FILES

config = tomllib.loads((root / "CargoLambda.toml").read_text())["template"]
files = {p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file()}
problems = [f"{path}: not a project's file" for path in sorted(files - PROJECT_FILES)]
problems += [f"{path}: a project's file, missing" for path in sorted(PROJECT_FILES - files)]

def rendered(path):
    parts = path.split("/")
    return path in config["render_files"] or parts[-1] in ("Cargo.toml", "README.md") or parts[-2:] == ["src", "main.rs"]

for path in sorted(files):
    text = (project / path).read_text()
    if rendered(path):
        problems += [f"{path}: a stray {tag}" for tag in ("{{", "{%") if tag in text]
        # What a comment tag leaves when nothing said what it stood for.
        problems += [f"{path}: an empty comment left by a tag" for line in text.splitlines() if line.strip() in ("#", "<!--  -->") and line.endswith((" ", "-->"))]
    # The lab, and the engine's own tree, are not a project's business.
    for word in ("lab/", "make verify", "make bench", "FAULTS", "template-check", "hakari", "test-worker", "shared/src"):
        if word in text:
            problems.append(f"{path}: names {word!r}, which a project has not")
for doc in sorted(p for p in files if p.endswith(".md")):
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", (project / doc).read_text()):
        if "://" not in target and not target.startswith("mailto:"):
            if not (project / doc).parent.joinpath(target).resolve().exists():
                problems.append(f"{doc}: links to {target}, which the project has not")
settings = (project / "project.mk").read_text()
if f"PROJECT := {name}\n" not in settings or "ifeq" in settings:
    problems.append(f"project.mk is not the project's own settings:\n{settings}")
readme = (project / "README.md").read_text()
if f"\n# {name}\n" not in readme or "# WriftAI webhooks on AWS, in Rust" in readme or "<!--  -->" in readme:
    problems.append("README.md is not the project's own, titled with its name")
for problem in problems:
    print(f"template-check: {problem}", file=sys.stderr)
if problems:
    sys.exit(1)
counted = [f for f in files if f != "template.yaml" and not f.startswith("docs/")]
rust = sum(len((project / f).read_text().splitlines()) for f in files if f.endswith(".rs"))
print(f"template-check: {len(files)} files ({len(counted)} besides template.yaml and docs/), {rust} lines of Rust; "
      f"{len(config['render_files'])} rendered besides cargo-lambda's own; no stray tag, no broken link")
EOF

# This checkout's engine instead of crates.io's, at the version the project names, and
# its tools; the checkout's lock, so the project resolves what was tested here.
patch_engine() { # engine checkout
  sed -i '/^\[patch.crates-io\]/,$d' "$project/Cargo.toml"
  printf '[patch.crates-io]\nwriftai-hooks = { path = "%s/shared" }\n' "$1" >>"$project/Cargo.toml"
}
patch_engine "$root"
cp "$root/Cargo.lock" "$project/Cargo.lock"
# The tooling as this checkout installed it, rather than installed again.
mkdir -p "$project/.local"
ln -s "$root/.local/venv" "$project/.local/venv"
ln -s "$root/.local/dynamodb" "$project/.local/dynamodb"
cd "$project"

if [ "${TEMPLATE_CHECK_SKIP_TEST:-0}" != 1 ]; then
  say "the project's make test"
  make test
  say "the project's make test passes"
fi

# `make dev` works one prediction, and a SIGTERM to `make` stops the whole stack.
say "the project's make dev"
setsid make dev >"$work/dev.log" 2>&1 </dev/null &
dev=$!
for _ in $(seq 600); do
  grep -q "Logs follow" "$work/dev.log" && break
  kill -0 "$dev" 2>/dev/null || { cat "$work/dev.log"; say "make dev ended early"; exit 1; }
  sleep 1
done
grep -q "Logs follow" "$work/dev.log" || { tail -n 40 "$work/dev.log"; say "make dev did not come up"; exit 1; }
grep -q 'RECORD#result' "$work/dev.log" || { cat "$work/dev.log"; say "make dev did not show the worked prediction"; exit 1; }
pids=$(cat .local/pids/*.pid)
kill -TERM "$dev"
wait "$dev" 2>/dev/null || true
dev=
for _ in $(seq 30); do
  alive=$(for pid in $pids; do kill -0 "$pid" 2>/dev/null && echo "$pid"; done; true)
  [ -z "$alive" ] && break
  sleep 1
done
[ -z "$alive" ] || { say "a SIGTERM to make dev left the stack running: $alive"; exit 1; }
say "make dev worked a prediction, and a SIGTERM to make stopped the stack"

# The upgrade drill: the checkout's engine with its version bumped stands for the next
# release; the project takes it by changing one line.
current=$(sed -n 's/^wriftai-hooks = "=\([^"]*\)"$/\1/p' Cargo.toml)
checkout=$(sed -n 's/^version = "\([^"]*\)"$/\1/p' "$root/Cargo.toml" | head -n 1)
bump() { echo "$1" | awk -F. '{ printf "%d.%d.%d", $1, $2, $3 + 1 }'; }
# Past the version the project names: the checkout's, or after it.
next=$checkout
[ -n "$release" ] && [ "$checkout" != "$current" ] || next=$(bump "$checkout")
drill="$work/engine-$next"
mkdir -p "$drill"
snapshot=$(git -C "$root" stash create)
git -C "$root" archive "${snapshot:-HEAD}" | tar -x -C "$drill"
# As a release sets it (docs/releasing.md): the workspace's version, every pin, and the
# lock's record of the workspace's own crates.
exact=${checkout//./\\.}
sed -i "s/^version = \"$exact\"$/version = \"$next\"/" "$drill/Cargo.toml"
grep -rlZ --include=Cargo.toml "\"=$exact\"" "$drill" | xargs -0 sed -i "s/\"=$exact\"/\"=$next\"/g"
cp "$root/Cargo.lock" "$drill/Cargo.lock"
(cd "$drill" && cargo update --quiet --workspace --offline)
cp Cargo.toml "$work/Cargo.toml.before"
sed -i "s/^wriftai-hooks = \"=$current\"$/wriftai-hooks = \"=$next\"/" Cargo.toml
changed=$(diff "$work/Cargo.toml.before" Cargo.toml | grep -c '^>' || true)
[ "$changed" = 1 ] || { say "the upgrade changed $changed lines of Cargo.toml, not one"; exit 1; }
patch_engine "$drill"
say "the upgrade drill: the engine $current -> $next, one line of Cargo.toml changed:"
{ diff "$work/Cargo.toml.before" Cargo.toml || true; } | sed -n "s/^\([<>] wriftai-hooks = \"=.*\)/  \1/p"
make test
installed=$(cargo install --list --root .local/tools | sed -n 's/^wriftai-hooks-tools v\([^ :]*\).*/\1/p')
[ "$installed" = "$next" ] || { say "the tools are at $installed, not $next"; exit 1; }
say "the project on the engine $next builds and passes its make test, its tools at $installed"
