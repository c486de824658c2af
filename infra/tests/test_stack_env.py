"""infra/stack_env.py: the `hooks` CLI's variables from a deployed stack's outputs."""

import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "infra"))

import stack  # noqa: E402
import stack_env  # noqa: E402


def test_every_output_it_reads_is_one_the_template_gives():
    assert set(stack_env.OUTPUTS) <= set(stack.template()["Outputs"])


def test_the_outputs_become_quoted_exports():
    outputs = [
        {"OutputKey": "TableName", "OutputValue": "t"},
        {"OutputKey": "QueueUrl", "OutputValue": "https://sqs/q"},
        {"OutputKey": "DeadLetterQueueUrl", "OutputValue": "https://sqs/d"},
        {"OutputKey": "OutputBucketName", "OutputValue": "b; rm -rf /"},
        {"OutputKey": "IndexShards", "OutputValue": "100"},
        {"OutputKey": "WebhookUrl", "OutputValue": "ignored"},
    ]
    assert stack_env.exports(outputs) == [
        "export TABLE_NAME=t",
        "export QUEUE_URL=https://sqs/q",
        "export DLQ_URL=https://sqs/d",
        "export OUTPUT_BUCKET='b; rm -rf /'",
        "export INDEX_SHARDS=100",
    ]


def test_a_stack_without_an_output_is_named():
    with pytest.raises(SystemExit, match="OutputBucketName"):
        stack_env.exports([{"OutputKey": "TableName", "OutputValue": "t"}])
