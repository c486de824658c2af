"""CargoLambda.toml against the tree: a project made by `cargo lambda new` leaves every
file of the lab behind, and the file names only what exists. (`make template-check`
makes such a project and runs its checks.)"""

import pathlib
import subprocess
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[2]


def tracked(*paths):
    out = subprocess.run(["git", "ls-files", "--", *paths], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def template():
    return tomllib.loads((ROOT / "CargoLambda.toml").read_text())["template"]


def test_every_file_of_the_lab_is_left_behind():
    # cargo-lambda matches ignore_files as exact paths, so a new file of the lab must be
    # listed, or a user's project carries it.
    lab = tracked("lab")
    assert lab, "git ls-files found no lab"
    missing = lab - set(template()["ignore_files"])
    assert not missing, f"add to ignore_files in CargoLambda.toml: {sorted(missing)}"


def test_ignored_and_rendered_files_exist():
    config = template()
    files = tracked() | {p.relative_to(ROOT).as_posix() for p in (ROOT / "lab").rglob("*") if p.is_file()}
    for key in ("ignore_files", "render_files"):
        stale = [path for path in config[key] if path not in files]
        assert not stale, f"{key} names files that are not in the tree: {stale}"


def test_the_prompts_are_the_settings_of_project_mk():
    # Each answer lands in project.mk; a prompt nothing reads, or a setting nothing asks
    # for, is a mistake.
    settings = (ROOT / "project.mk").read_text()
    for prompt in template()["prompts"]:
        assert "{{ %s }}" % prompt in settings, f"project.mk does not use the answer to {prompt}"
    assert "{{ project_name }}" in settings
    assert template()["disable_default_prompts"] is True
