"""Where cargo builds this workspace: `target/`, or CARGO_TARGET_DIR (cargo metadata says)."""

import functools
import json
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]


@functools.cache
def target_dir():
    metadata = subprocess.run(
        ["cargo", "metadata", "--no-deps", "--format-version", "1"], cwd=ROOT, capture_output=True, check=True, text=True
    )
    return pathlib.Path(json.loads(metadata.stdout)["target_directory"])


def debug_binary(name):
    path = target_dir() / "debug" / name
    assert path.exists(), f"{path} is not built: `cargo build --bins` (make unit does) builds it"
    return path

# The debug binaries are what `make unit` builds. {% comment %}


# This repository: each function's code is its crate's `main.rs` and the engine's module
# of the same name (`shared/src/<function>/`), which that `main` serves.
def function_sources(crate):
    """The Rust files of function `crate`: its own crate's and its engine module's."""
    return sorted([*(ROOT / "functions" / crate / "src").rglob("*.rs"), *(ROOT / "shared/src" / crate).rglob("*.rs")])
# {% endcomment %}
