"""Signatures both ways with the official WriftAI client: the committed vectors are the
ones it makes, and what our `hooks sign` makes, its `verify` accepts."""

import json
import pathlib
import subprocess
import time

import pytest
from wriftai import _webhook

import signature_vectors
from cargo import debug_binary

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_the_committed_vectors_are_the_official_clients():
    committed = json.loads((ROOT / "shared/tests/vectors/signatures.json").read_text())
    assert committed == signature_vectors.vectors()


@pytest.mark.parametrize(
    "secret, body",
    [
        ("whsec_abc", b'{"id":"a1b2c3d4-5678-9abc-def0-1234567890ab","status":"succeeded"}'),
        ("s p a c e s & ünïcode", '{"output": "caf\u00e9 ☕", "n": [1, 2.5e3]}'.encode()),
        ("x" * 200, b"  {\n}\n"),
    ],
)
def test_the_official_client_accepts_our_signatures(secret, body):
    # Built by `make unit` with the rest of the workspace (a `cargo run -p cli` here
    # would resolve features for cli alone and rebuild half the dependencies).
    header = subprocess.run(
        [debug_binary("hooks"), "sign", "--secret", secret],
        input=body, capture_output=True, check=True, cwd=ROOT,
    ).stdout.decode().strip()
    timestamp = int(header.split(",")[0].removeprefix("t="))
    assert abs(timestamp - time.time()) < 60
    _webhook.verify(body, header, secret)
    with pytest.raises(_webhook.WebhookSignatureMismatchError):
        _webhook.verify(body + b" ", header, secret)
