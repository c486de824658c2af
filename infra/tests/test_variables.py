"""The functions' configuration variables, read from their Rust source, against
template.yaml, the cargo-lambda deploy metadata and the configuration table in
docs/configuration.md: no variable a function requires is left unset by the template,
none the template sets is unread, and every one is documented in that table."""

import pathlib
import re
import tomllib

import pytest

from cargo import function_sources
from test_template import TEMPLATE

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONFIGURATION = ROOT / "docs" / "configuration.md"
FUNCTIONS = {"receiver": "ReceiverFunction", "worker": "WorkerFunction", "reconciler": "ReconcilerFunction"}

NAME = re.compile(r'"([A-Z][A-Z0-9_]{2,})"')
REQUIRED = re.compile(r'env\.required\(\s*"([A-Z0-9_]+)"')
CALLS = re.compile(r"\b(\w+)::from_env\b|\b(webhook_from_env)\(")


def body(text, start):
    """The brace-balanced block that opens at or after `start`."""
    depth, i = 0, text.index("{", start)
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i : j + 1]
    raise ValueError("unbalanced braces")


def config_readers():
    """Every `from_env` (keyed by its type) and `webhook_from_env` in the Rust source."""
    readers = {}
    for path in [*ROOT.glob("shared/src/**/*.rs"), *ROOT.glob("functions/*/src/**/*.rs")]:
        text = path.read_text()
        for m in re.finditer(r"pub fn (from_env|webhook_from_env)\b", text):
            if m.group(1) == "webhook_from_env":
                owner = "webhook_from_env"
            else:
                owner = re.findall(r"^impl(?:<[^>]*>)? (\w+)", text[: m.start()], re.M)[-1]
            readers[owner] = body(text, m.end())
    return readers


READERS = config_readers()


def reads(code, seen=None):
    """Variable names read by `code` and by the readers it calls, and which of them
    are required."""
    seen = set() if seen is None else seen
    names, required = set(NAME.findall(code)), set(REQUIRED.findall(code))
    for typed, plain in CALLS.findall(code):
        reader = typed or plain
        if reader in READERS and reader not in seen:
            seen.add(reader)
            more, more_required = reads(READERS[reader], seen)
            names |= more
            required |= more_required
    return names, required


def function_reads(crate):
    code = "\n".join(p.read_text() for p in function_sources(crate))
    # Only the names read through configuration (the engine's `env`, and the `setup` a
    # project's own settings are read from), not every capitalised literal.
    direct = set(re.findall(r'(?:env|setup)\.(?:parsed|optional|required|var)\(\s*"([A-Z0-9_]+)"', code))
    names, required = reads("\n".join(m.group(0) for m in CALLS.finditer(code)))
    return (names | direct), required


def template_variables(resource):
    glob = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    own = TEMPLATE["Resources"][resource]["Properties"].get("Environment", {}).get("Variables", {})
    return {**glob, **own}


def template_env(resource):
    return set(template_variables(resource))


def conditional(value):
    """`!If [condition, value, !Ref AWS::NoValue]`: set only when a parameter is given."""
    return isinstance(value, list) and "AWS::NoValue" in value


@pytest.mark.parametrize("crate, resource", FUNCTIONS.items())
def test_the_template_sets_every_required_variable_and_none_that_is_unread(crate, resource):
    names, required = function_reads(crate)
    env = template_env(resource)
    assert required <= env, f"{crate} requires {sorted(required - env)}, which the template does not set"
    assert env <= names, f"the template sets {sorted(env - names)} for {crate}, which it never reads"


@pytest.mark.parametrize("crate, resource", FUNCTIONS.items())
def test_the_cargo_lambda_deploy_metadata_sets_what_the_template_sets(crate, resource):
    manifest = tomllib.loads((ROOT / "functions" / crate / "Cargo.toml").read_text())
    deploy = manifest["package"]["metadata"]["lambda"]["deploy"]
    variables = template_variables(resource)
    always = {name for name, value in variables.items() if not conditional(value)}
    assert always <= set(deploy["env"]) <= set(variables)
    properties = TEMPLATE["Resources"][resource]["Properties"]
    assert (deploy["memory"], deploy["timeout"]) == (properties["MemorySize"], properties["Timeout"])


def configuration_table():
    """The rows of the first table in docs/configuration.md: the functions' variables."""
    rows, seen_table = [], False
    for line in CONFIGURATION.read_text().splitlines():
        if line.startswith("|"):
            seen_table = True
            rows.append(line)
        elif seen_table:
            break
    assert len(rows) > 2, f"{CONFIGURATION.relative_to(ROOT)} has no configuration table"
    return "\n".join(rows)


def test_every_variable_a_function_reads_is_documented():
    table = configuration_table()
    for crate in FUNCTIONS:
        names, _ = function_reads(crate)
        missing = sorted(n for n in names if f"`{n}`" not in table)
        assert not missing, f"{crate} reads {missing}, which the configuration table in docs/configuration.md does not list"


def test_the_reading_is_not_vacuous():
    names, required = function_reads("worker")
    assert {"TABLE_NAME", "QUEUE_URL", "WRIFTAI_ACCESS_TOKEN", "WORKER_CONCURRENCY"} <= names
    assert {"TABLE_NAME", "QUEUE_URL", "WRIFTAI_ACCESS_TOKEN"} <= required
