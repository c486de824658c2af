"""Signature test vectors made with the official WriftAI client (PyPI `wriftai`), and
the outcome its own `verify` gives each one at a fixed "now". The Rust verifier must
agree (shared/tests/signature_vectors.rs), except where WRIFTAI.md asks for more: the
official client looks only at the first v1 signature, while any matching one must pass.

Run `python infra/tests/signature_vectors.py > shared/tests/vectors/signatures.json` to
regenerate; test_signatures.py checks the file is what this script makes."""

import datetime
import json
import sys
from unittest import mock

from wriftai import _webhook

NOW = 1_790_000_000
SECRET = "whsec_test_7f3a"
BODY = '{"id":"a1b2c3d4-5678-9abc-def0-1234567890ab","status":"succeeded","output":"caf\\u00e9 ☕"}'
RESERIALISED = json.dumps(json.loads(BODY), indent=2)


def sig(body, secret=SECRET, t=NOW):
    return _webhook._compute_signature(b"%d." % t + body.encode(), secret)


GOOD = sig(BODY)
OTHER = sig(BODY, secret="whsec_other")

# name, header, body, outcome we must give when it differs from the official client's
CASES = [
    ("valid", f"t={NOW},v1={GOOD}", BODY, None),
    ("valid with unknown scheme", f"t={NOW},v2=abc,v1={GOOD},v9=", BODY, None),
    ("signed 300 s ago", f"t={NOW - 300},v1={sig(BODY, t=NOW - 300)}", BODY, None),
    ("no timestamp", f"v1={GOOD}", BODY, None),
    ("timestamp not a number", f"t=12a,v1={GOOD}", BODY, "no_timestamp"),
    ("no v1", f"t={NOW},v2={GOOD}", BODY, None),
    ("empty v1", f"t={NOW},v1=", BODY, None),
    ("stale", f"t={NOW - 301},v1={sig(BODY, t=NOW - 301)}", BODY, None),
    ("future beyond tolerance", f"t={NOW + 301},v1={sig(BODY, t=NOW + 301)}", BODY, None),
    ("truncated signature", f"t={NOW},v1={GOOD[:-1]}", BODY, None),
    ("uppercase hex", f"t={NOW},v1={GOOD.upper()}", BODY, None),
    ("another secret", f"t={NOW},v1={OTHER}", BODY, None),
    ("signed over re-serialised JSON", f"t={NOW},v1={sig(RESERIALISED)}", BODY, None),
    ("signature for another body", f"t={NOW},v1={sig('{}')}", BODY, None),
    ("space after comma", f"t={NOW}, v1={GOOD}", BODY, None),
    ("rotation: second v1 matches", f"t={NOW},v1={OTHER},v1={GOOD}", BODY, "ok"),
]

CODES = {
    _webhook.WebhookNoTimestampError: "no_timestamp",
    _webhook.WebhookNoSignatureError: "no_signature",
    _webhook.WebhookSignatureMismatchError: "mismatch",
    _webhook.WebhookTimestampOutsideToleranceError: "stale",
}


def official(header, body):
    frozen = mock.Mock(wraps=datetime.datetime)
    frozen.now.return_value = datetime.datetime.fromtimestamp(NOW, datetime.timezone.utc)
    with mock.patch.object(_webhook, "datetime", frozen):
        try:
            _webhook.verify(body.encode(), header, SECRET)
            return "ok"
        except _webhook.WebhookSignatureVerificationError as err:
            return CODES[type(err)]
        except ValueError:
            return "malformed"


def vectors():
    out = []
    for name, header, body, ours in CASES:
        got = official(header, body)
        out.append({"name": name, "secret": SECRET, "now": NOW, "header": header, "body": body,
                    "official": got, "expect": ours or got})
    return out


if __name__ == "__main__":
    json.dump(vectors(), sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")
