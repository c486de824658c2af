#!/usr/bin/env bash
#! `make template-check`: makes a project from this checkout as a user would, with
#! `cargo lambda new my-hooks --template <archive>` (non-interactively, so with the
#! defaults of CargoLambda.toml), and checks it:
#! - no `{{` or `{%` left in any file cargo-lambda rendered, and the name in project.mk;
#! - nothing of what CargoLambda.toml leaves behind, and no relative link in its
#!   Markdown to a file it does not have;
#! - its own `make install unit template` and `cargo hakari verify` pass, sharing this
#!   checkout's target directory (so only the workspace's own crates are built again).
#! The archive is of HEAD plus the tracked files' uncommitted changes (`git stash create`).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
name=my-hooks
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

tree=$(git -C "$root" stash create)
git -C "$root" archive -o "$work/template.zip" "${tree:-HEAD}"
(cd "$work" && "$root/.local/venv/bin/cargo-lambda" lambda new "$name" --template "$work/template.zip" -y)
project="$work/$name"
echo "template-check: made $project"

"$root/.local/venv/bin/python" - "$root" "$project" "$name" <<'EOF'
import pathlib, re, sys, tomllib

root, project, name = map(pathlib.Path, sys.argv[1:4])
config = tomllib.loads((root / "CargoLambda.toml").read_text())["template"]
rendered_too = set(config["render_files"])
left_behind = set(config["ignore_files"])
files = {p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file()}
problems = []

def always_rendered(path):
    parts = path.split("/")
    return (parts[-1] in ("Cargo.toml", "README.md")
            or parts[-2:] in (["src", "main.rs"], ["src", "lib.rs"])
            or (len(parts) > 1 and parts[-2] == "bin"))

for path in sorted(files):
    if path in rendered_too or always_rendered(path):
        text = (project / path).read_text()
        for tag in ("{{", "{%"):
            if tag in text:
                problems.append(f"{path}: a stray {tag} (rendered by cargo lambda new)")
    if path in left_behind or path.startswith("lab/"):
        problems.append(f"{path}: should have been left behind")
for path in rendered_too - files:
    problems.append(f"{path}: in render_files, but not in the project")

for doc in sorted(p for p in files if p.endswith(".md")):
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", (project / doc).read_text()):
        if "://" in target or target.startswith("mailto:"):
            continue
        if not (project / doc).parent.joinpath(target).resolve().exists():
            problems.append(f"{doc}: links to {target}, which the project has not")

settings = (project / "project.mk").read_text()
if f"PROJECT := {name}\n" not in settings:
    problems.append(f"project.mk does not name the project {name}:\n{settings}")
readme = (project / "README.md").read_text()
if f"\n# {name}\n" not in readme or "# WriftAI webhooks on AWS, in Rust" in readme:
    problems.append("README.md is not the project's own, titled with its name")

for problem in problems:
    print(f"template-check: {problem}", file=sys.stderr)
if problems:
    sys.exit(1)
print(f"template-check: {len(files)} files, {len(rendered_too)} rendered besides cargo-lambda's own, no stray tag, no broken link")
EOF

cd "$project"
# cargo-hakari as this checkout installs it, rather than built again.
"$root/infra/hakari.sh" verify >/dev/null
mkdir -p .local && ln -s "$root/.local/cargo" .local/cargo
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
make install unit template
infra/hakari.sh verify
echo "template-check: the project made by cargo lambda new passes its unit tests and template checks"
