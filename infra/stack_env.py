"""Prints, as shell exports, the variables the `hooks` CLI reads for a deployed stack,
from the stack's outputs:

    eval "$(.local/venv/bin/python infra/stack_env.py <stack-name>)"

The region and credentials are the AWS CLI's usual ones (AWS_PROFILE, AWS_REGION...)."""

import shlex
import sys

# The template's outputs and the variables they fill (infra/tests keeps them in step).
OUTPUTS = {
    "TableName": "TABLE_NAME",
    "QueueUrl": "QUEUE_URL",
    "DeadLetterQueueUrl": "DLQ_URL",
    "OutputBucketName": "OUTPUT_BUCKET",
    "IndexShards": "INDEX_SHARDS",
}


def exports(outputs):
    """`export NAME=value` lines from CloudFormation's `Outputs` list."""
    values = {o["OutputKey"]: o["OutputValue"] for o in outputs}
    missing = [key for key in OUTPUTS if key not in values]
    if missing:
        raise SystemExit(f"stack_env: the stack has no output {', '.join(missing)} (deployed from an older template?)")
    return [f"export {name}={shlex.quote(values[key])}" for key, name in OUTPUTS.items()]


def main(argv):
    if len(argv) != 2:
        raise SystemExit("usage: stack_env.py <stack-name>")
    import boto3

    stack = boto3.client("cloudformation").describe_stacks(StackName=argv[1])["Stacks"][0]
    print("\n".join(exports(stack.get("Outputs", []))))


if __name__ == "__main__":
    main(sys.argv)
