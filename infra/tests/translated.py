"""template.yaml as CloudFormation will see it: translated offline by the SAM translator
(the package `sam deploy` uses), with the code already uploaded and the required
parameters given. No AWS account is reached."""

import copy
import functools
import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "infra"))

import stack  # noqa: E402  (infra/stack.py reads the template with CloudFormation's tags)

ACCOUNT = "123456789012"
PARAMETERS = {
    "ProjectName": "my-hooks",
    "AccessTokenSecretArn": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:wriftai-token",
    "WebhookSecretArn": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:wriftai-webhook",
}


class NoManagedPolicies:
    """The translator asks IAM for managed policy ARNs only when a function names one
    by name; this template names none, so nothing is looked up."""

    def load(self):
        return {}


@functools.cache
def translated():
    from samtranslator.translator.transform import transform

    template = copy.deepcopy(stack.template())
    # What `sam deploy` puts there once the build is uploaded.
    template["Globals"]["Function"]["CodeUri"] = "s3://artifacts/functions.zip"
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return transform(template, dict(PARAMETERS), NoManagedPolicies())


def resources(kind=None):
    every = translated()["Resources"]
    return {name: r for name, r in every.items() if kind is None or r["Type"] == kind}
