"""Each role's IAM actions are exactly the AWS operations its function's code calls.

The list is kept beside the code, in the function's Cargo.toml
(`[package.metadata.aws] actions`), and held on both sides:
- against the code: the AWS SDK operations the function's binary links (its symbols:
  the linker keeps an operation only if some code path can call it), each mapped to the
  IAM actions it needs. A new SDK call without its action fails here, and so does an
  action no code calls;
- against the template: the statements template.yaml writes into the function's role,
  as translated for deployment (translated.py).

The binaries are the debug ones `make unit` builds (`cargo build --bins`) before these
tests run."""

import pathlib
import re
import subprocess
import tomllib

import pytest

from cargo import debug_binary
from translated import resources

ROOT = pathlib.Path(__file__).resolve().parents[2]
FUNCTIONS = {"receiver": "ReceiverFunction", "worker": "WorkerFunction", "reconciler": "ReconcilerFunction"}

# The IAM actions an SDK operation needs, where they are not `service:Operation`.
NEEDS = {
    # A transaction is authorised item by item: ours hold an update or a condition
    # check, and a put.
    "dynamodb:TransactWriteItems": {"dynamodb:UpdateItem", "dynamodb:ConditionCheckItem", "dynamodb:PutItem"},
    # A multipart upload is authorised as the put it makes.
    "s3:CreateMultipartUpload": {"s3:PutObject"},
    "s3:UploadPart": {"s3:PutObject"},
    "s3:CompleteMultipartUpload": {"s3:PutObject"},
    "s3:HeadObject": {"s3:GetObject"},
    # A read of a missing key answers NoSuchKey only to a role that may list the bucket
    # (403 otherwise, the same as a refusal).
    "s3:GetObject": {"s3:GetObject", "s3:ListBucket"},
}
# Operations the SDK links but the functions never make: the credentials chain's (on
# Lambda the role's credentials are in the environment; the debug builds also carry the
# `hooks` CLI's SSO login) and S3 Express sessions (for directory buckets only; the
# output bucket is a general purpose one).
NEVER_CALLED = {
    "sts:AssumeRole",
    "sts:AssumeRoleWithWebIdentity",
    "sso:GetRoleCredentials",
    "ssooidc:CreateToken",
    "s3:CreateSession",
}

OPERATION = re.compile(r"\baws_sdk_(\w+?)::operation::\w+::(\w+)::orchestrate\b")


def operations(binary):
    """The SDK operations a built binary links, as `service:Operation`."""
    symbols = subprocess.run(["nm", "-C", str(debug_binary(binary))], capture_output=True, check=True, text=True).stdout
    return {f"{service}:{op}" for service, op in OPERATION.findall(symbols)}


def needed(ops):
    actions = set()
    for op in ops - NEVER_CALLED:
        actions |= NEEDS.get(op, {op})
    return actions


def listed(crate):
    manifest = tomllib.loads((ROOT / "functions" / crate / "Cargo.toml").read_text())
    return set(manifest["package"]["metadata"]["aws"]["actions"])


def granted(resource):
    """The actions of the statements template.yaml writes into the function's role."""
    role = f"{resource}Role"
    actions = set()
    for policy in resources()[role]["Properties"].get("Policies", []):
        for branch in policy["Fn::If"][1:] if "Fn::If" in policy else [policy]:
            if not branch.get("PolicyName", "").startswith(role + "Policy"):
                continue  # SAM's own: the queue's poller, the failure destination
            for statement in branch["PolicyDocument"]["Statement"]:
                action = statement["Action"]
                actions |= set(action if isinstance(action, list) else [action])
    return actions


@pytest.mark.parametrize("crate", FUNCTIONS)
def test_the_list_is_what_the_code_calls(crate):
    calls, kept = needed(operations(crate)), listed(crate)
    assert calls <= kept, f"{crate} calls {sorted(calls - kept)}: add them to functions/{crate}/Cargo.toml"
    assert kept <= calls, f"{crate} lists {sorted(kept - calls)}, which no code of it calls"


@pytest.mark.parametrize("crate, resource", FUNCTIONS.items())
def test_the_role_grants_what_the_list_says(crate, resource):
    assert granted(resource) == listed(crate)


def test_the_reading_is_not_vacuous():
    worker = operations("worker")
    assert {"dynamodb:UpdateItem", "s3:PutObject", "sqs:SendMessage"} <= worker
    assert "s3:PutObject" not in operations("receiver"), "an operation the code never reaches is not linked"
    assert needed({"dynamodb:TransactWriteItems", "sts:AssumeRole"}) == NEEDS["dynamodb:TransactWriteItems"]
