"""What a project made from the template holds: its user's own files, named here
(PROJECT_FILES), and nothing of the engine, its tools or the lab, which CargoLambda.toml
leaves behind (`cargo lambda new` matches ignore_files as exact paths, so every other
file of the tree must be listed there: `make template-files` rewrites the list).
`make template-check` makes such a project and runs its checks."""

import pathlib
import subprocess
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[2]

# A project's files: its three functions, its work and the test of its worker on the
# stack, its template and scripts, their checks, and its docs.
PROJECT_FILES = {
    ".ci/run",
    ".gitignore",
    "Cargo.toml",
    "Makefile",
    "README.md",
    "project.mk",
    "rustfmt.toml",
    "samconfig.toml",
    "template.yaml",
    "functions/receiver/Cargo.toml",
    "functions/receiver/src/main.rs",
    "functions/reconciler/Cargo.toml",
    "functions/reconciler/src/main.rs",
    "functions/worker/Cargo.toml",
    "functions/worker/src/main.rs",
    "functions/worker/src/work.rs",
    "functions/worker/tests/stack.rs",
    "infra/build.sh",
    "infra/dev.sh",
    "infra/down.sh",
    "infra/e2e.sh",
    "infra/glue.sh",
    "infra/install.sh",
    "infra/local.env",
    "infra/peek.py",
    "infra/phases.sh",
    "infra/requirements.txt",
    "infra/stack.py",
    "infra/stack_env.py",
    "infra/up.sh",
    "infra/tests/cargo.py",
    "infra/tests/test_deploy.py",
    "infra/tests/test_permissions.py",
    "infra/tests/test_stack_env.py",
    "infra/tests/test_template.py",
    "infra/tests/translated.py",
    "docs/configuration.md",
    "docs/design.md",
    "docs/local-stack.md",
    "docs/operations.md",
    "docs/receiver.md",
    "docs/reliability.md",
    "docs/testing.md",
    "docs/upgrading.md",
}

# The targets of issue 32: a project is its user's few files.
MOST_FILES = 40


def tracked(*paths):
    out = subprocess.run(["git", "ls-files", "--", *paths], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def template():
    return tomllib.loads((ROOT / "CargoLambda.toml").read_text())["template"]


def test_every_file_is_the_projects_or_left_behind_and_never_both():
    files, ignored = tracked(), set(template()["ignore_files"])
    assert not PROJECT_FILES & ignored, f"both the project's and left behind: {sorted(PROJECT_FILES & ignored)}"
    missing = files - PROJECT_FILES - ignored
    assert not missing, f"neither the project's (PROJECT_FILES) nor left behind (make template-files): {sorted(missing)}"


def test_the_engine_its_tools_and_the_lab_are_left_behind():
    ignored = set(template()["ignore_files"])
    for part in ["shared", "lab", "infra/tools", "infra/hooks", "infra/wriftai-sim", "infra/local-aws", "infra/e2e"]:
        carried = tracked(part) - ignored
        assert tracked(part) and not carried, f"a project would carry {part}: {sorted(carried)}"


def test_a_project_is_at_most_forty_files_besides_its_template_and_docs():
    counted = {f for f in PROJECT_FILES if f != "template.yaml" and not f.startswith("docs/")}
    assert len(counted) <= MOST_FILES, f"{len(counted)} files: {sorted(counted)}"


def test_ignored_and_rendered_files_exist():
    config, files = template(), tracked()
    for key in ("ignore_files", "render_files"):
        stale = [path for path in config[key] if path not in files]
        assert not stale, f"{key} names files that are not in the tree: {stale}"
    assert set(config["render_files"]) <= PROJECT_FILES, "only a project's files are rendered"


def test_the_prompts_are_the_settings_of_project_mk():
    # Each answer lands in project.mk; a prompt nothing reads, or a setting nothing asks
    # for, is a mistake.
    settings = (ROOT / "project.mk").read_text()
    for prompt in template()["prompts"]:
        assert "{{ %s }}" % prompt in settings, f"project.mk does not use the answer to {prompt}"
    assert "{{ project_name }}" in settings
    assert template()["disable_default_prompts"] is True


def test_the_engine_a_project_names_is_the_workspaces_version():
    manifest = tomllib.loads((ROOT / "Cargo.toml").read_text())
    version = manifest["workspace"]["package"]["version"]
    assert manifest["workspace"]["dependencies"]["wriftai-hooks"] == f"={version}"
