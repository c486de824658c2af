"""template.yaml must describe the same table and queues as infra/resources.json, the
definition the local stack is built from."""

import json
import pathlib

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]


class CloudFormationLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (!Ref, !GetAtt, ...) as plain values."""


def _tag(loader, _suffix, node):
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)


CloudFormationLoader.add_multi_constructor("!", _tag)

LOCAL = json.loads((ROOT / "infra" / "resources.json").read_text())
TEMPLATE = yaml.load((ROOT / "template.yaml").read_text(), Loader=CloudFormationLoader)
RESOURCES = TEMPLATE["Resources"]


def by_name(items, key):
    return {item[key]: item for item in items}


def test_table_keys_and_indexes_agree():
    local, deployed = LOCAL["table"], RESOURCES["Table"]["Properties"]
    assert deployed["BillingMode"] == local["BillingMode"]
    assert deployed["KeySchema"] == local["KeySchema"]
    assert by_name(deployed["AttributeDefinitions"], "AttributeName") == by_name(
        local["AttributeDefinitions"], "AttributeName"
    )
    assert by_name(deployed["GlobalSecondaryIndexes"], "IndexName") == by_name(
        local["GlobalSecondaryIndexes"], "IndexName"
    )
    assert deployed["TimeToLiveSpecification"] == {
        "AttributeName": local["TimeToLiveAttribute"],
        "Enabled": True,
    }


def test_queues_and_redrive_agree():
    queue = RESOURCES["WorkQueue"]["Properties"]
    for name, value in LOCAL["queue"]["Attributes"].items():
        assert str(queue[name]) == value, name
    assert queue["RedrivePolicy"]["maxReceiveCount"] == LOCAL["redrive"]["maxReceiveCount"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == "WorkDeadLetterQueue.Arn"
    dlq = RESOURCES["WorkDeadLetterQueue"]["Properties"]
    for name, value in LOCAL["dlq"]["Attributes"].items():
        assert str(dlq[name]) == value, name


# Resources only AWS has, and why the local stack does without them.
AWS_ONLY = {
    "ScheduleDeadLetterQueue": "EventBridge Scheduler's own DLQ; the local schedule just runs again next tick",
}


def test_every_table_and_queue_is_known_to_both_sides():
    kinds = {"AWS::DynamoDB::Table": "table", "AWS::SQS::Queue": "queue"}
    deployed = sorted(kinds[r["Type"]] for name, r in RESOURCES.items() if r["Type"] in kinds and name not in AWS_ONLY)
    local_kinds = {"table": "table", "queue": "queue", "dlq": "queue"}
    local = sorted(local_kinds[key] for key in LOCAL if key in local_kinds)
    assert deployed == local


def test_the_aws_only_resources_exist():
    assert set(AWS_ONLY) <= set(RESOURCES)


def test_webhooks_are_signed_unless_the_stack_says_otherwise():
    """Without AllowUnsignedWebhooks=true the stack refuses to deploy with no secret,
    and the receiver is told which it is."""
    parameter = TEMPLATE["Parameters"]["AllowUnsignedWebhooks"]
    assert parameter["Default"] == "false"
    rule = TEMPLATE["Rules"]["WebhooksAreSigned"]
    assert rule["RuleCondition"] == ["AllowUnsignedWebhooks", "false"]
    assert [a["Assert"] for a in rule["Assertions"]] == [[["WebhookSecretArn", ""]]]
    variables = RESOURCES["ReceiverFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["ALLOW_UNSIGNED_WEBHOOKS"] == "AllowUnsignedWebhooks"


def test_the_time_budgets_fit_for_every_allowed_parameter_value():
    """The work queue's visibility timeout covers six worker timeouts plus the longest
    batch window the template allows, and the worker's timeout leaves its work time
    after the margin kept for reporting the batch (REPORT_MARGIN in shared/src/work.rs)
    and a whole download."""
    import re

    worker = RESOURCES["WorkerFunction"]["Properties"]
    window = TEMPLATE["Parameters"]["WorkerBatchWindowSeconds"]["MaxValue"]
    visibility = int(RESOURCES["WorkQueue"]["Properties"]["VisibilityTimeout"])
    assert visibility >= 6 * worker["Timeout"] + window
    margin = re.search(r"REPORT_MARGIN: Duration = Duration::from_secs\((\d+)\)", (ROOT / "shared/src/work.rs").read_text())
    download = re.search(r'"DOWNLOAD_TIMEOUT_SECS", (\d+)', (ROOT / "functions/worker/src/config.rs").read_text())
    assert worker["Timeout"] > int(margin.group(1)) + int(download.group(1))


FUNCTIONS = ["ReceiverFunction", "WorkerFunction", "ReconcilerFunction"]


def test_each_stack_has_its_own_metrics_namespace():
    assert TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]["METRICS_NAMESPACE"] == "AWS::StackName"
    alarms = [r for r in RESOURCES.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    custom = [r for r in alarms if not r["Properties"]["Namespace"].startswith("AWS/")]
    assert custom and all(r["Properties"]["Namespace"] == "AWS::StackName" for r in custom)


def test_each_function_logs_to_its_own_group_with_the_stacks_retention():
    for name in FUNCTIONS:
        group = RESOURCES[name]["Properties"]["LoggingConfig"]["LogGroup"]
        assert RESOURCES[group]["Type"] == "AWS::Logs::LogGroup", name
        assert RESOURCES[group]["Properties"]["RetentionInDays"] == "LogRetentionDays"
    assert TEMPLATE["Parameters"]["LogRetentionDays"]["Default"] == 30


def test_a_receiver_reservation_of_zero_reserves_nothing():
    assert TEMPLATE["Parameters"]["ReceiverReservedConcurrency"]["Default"] == 0
    reserved = RESOURCES["ReceiverFunction"]["Properties"]["ReservedConcurrentExecutions"]
    assert reserved == ["HasReceiverReservation", "ReceiverReservedConcurrency", "AWS::NoValue"]
    assert TEMPLATE["Conditions"]["HasReceiverReservation"] == [["ReceiverReservedConcurrency", 0]]


def test_every_resource_that_takes_tags_carries_the_projects():
    assert TEMPLATE["Globals"]["Function"]["Tags"] == {"project": "wriftai-hooks"}
    assert TEMPLATE["Globals"]["Function"]["PropagateTags"] is True
    taggable = ("AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::Logs::LogGroup", "AWS::CloudWatch::Alarm")
    for name, resource in RESOURCES.items():
        if resource["Type"] in taggable:
            assert {"Key": "project", "Value": "wriftai-hooks"} in resource["Properties"].get("Tags", []), name
