"""template.yaml's own rules, and the local stack made from it (infra/stack.py)."""

import json
import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "infra"))

import stack  # noqa: E402  (infra/stack.py, the local stack's resources)


class CloudFormationLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (!Ref, !GetAtt, ...) as plain values."""


def _tag(loader, _suffix, node):
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)


CloudFormationLoader.add_multi_constructor("!", _tag)

TEMPLATE = yaml.load((ROOT / "template.yaml").read_text(), Loader=CloudFormationLoader)
RESOURCES = TEMPLATE["Resources"]


def test_the_local_table_is_the_templates():
    tmpl = stack.template()
    spec, ttl = stack.table_spec("Table", tmpl["Resources"]["Table"]["Properties"])
    assert spec["TableName"] == f"{stack.setting('PROJECT')}-table"
    assert spec["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
    assert [index["IndexName"] for index in spec["GlobalSecondaryIndexes"]] == ["open", "work", "received"]
    assert ttl == "expires_at"


def test_the_local_work_queue_sends_to_its_dead_letter_queue(monkeypatch):
    monkeypatch.delenv("LOCAL_VISIBILITY_TIMEOUT", raising=False)
    tmpl = stack.template()
    queues = stack.of_type(tmpl["Resources"], "AWS::SQS::Queue")
    order = stack.queue_order(queues)
    assert order.index("WorkDeadLetterQueue") < order.index("WorkQueue")
    attributes = stack.queue_attributes(tmpl, queues["WorkQueue"], {"WorkDeadLetterQueue": "arn:dlq"})
    assert json.loads(attributes.pop("RedrivePolicy")) == {"deadLetterTargetArn": "arn:dlq", "maxReceiveCount": 5}
    assert attributes == {"VisibilityTimeout": "200", "MessageRetentionPeriod": "1209600", "MaximumMessageSize": "1048576"}
    monkeypatch.setenv("LOCAL_VISIBILITY_TIMEOUT", "5")
    assert stack.queue_attributes(tmpl, queues["WorkQueue"], {"WorkDeadLetterQueue": "a"})["VisibilityTimeout"] == "5"


def test_each_variable_set_to_a_resource_gets_its_local_value():
    made = {"Table": "t", "WorkQueue": "q", "OutputBucket": "b"}
    assert stack.variables(stack.template(), made) == {"TABLE_NAME": "t", "QUEUE_URL": "q", "OUTPUT_BUCKET": "b"}


def test_every_resource_a_function_variable_refers_to_is_made_locally():
    tmpl = stack.template()
    local = {"AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::S3::Bucket"}
    everything = {name: "x" for name in tmpl["Resources"]}
    for name in stack.variables(tmpl, everything):
        refs = [
            block["Environment"]["Variables"][name]["Ref"]
            for block in [tmpl["Globals"]["Function"]] + [r.get("Properties", {}) for r in tmpl["Resources"].values()]
            if isinstance(block.get("Environment", {}).get("Variables", {}).get(name), dict)
        ]
        for ref in refs:
            assert tmpl["Resources"][ref]["Type"] in local, f"{name}: the local stack does not make {ref}"


def test_the_output_bucket_is_private_encrypted_and_tls_only():
    bucket = RESOURCES["OutputBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert TEMPLATE["Parameters"]["OutputVersioning"]["Default"] == "Suspended"
    rules = {rule["Id"]: rule for rule in bucket["LifecycleConfiguration"]["Rules"]}
    assert rules["abort-unfinished-uploads"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert rules["expire-outputs"]["ExpirationInDays"] == ["OutputsExpire", "OutputExpiryDays", 1]
    # Only the copies of output files: records/ holds objects items point at, which
    # never expire with them.
    assert rules["expire-outputs"]["Prefix"] == "predictions/"
    (deny,) = RESOURCES["OutputBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert (deny["Effect"], deny["Condition"]) == ("Deny", {"Bool": {"aws:SecureTransport": False}})


def test_only_the_worker_writes_to_the_bucket_and_only_under_predictions_and_records():
    writers = {}
    for name, resource in RESOURCES.items():
        for policy in resource.get("Properties", {}).get("Policies", []):
            for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                if any(action.startswith("s3:") for action in actions):
                    writers.setdefault(name, []).append((sorted(actions), statement["Resource"]))
    assert writers == {
        "WorkerFunction": [
            (
                ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
                ["${OutputBucket.Arn}/predictions/*", "${OutputBucket.Arn}/records/*", "${OutputBucket.Arn}/steps/*"],
            ),
            (["s3:ListBucket"], "OutputBucket.Arn"),
        ]
    }
    assert RESOURCES["WorkerFunction"]["Properties"]["Environment"]["Variables"]["OUTPUT_BUCKET"] == "OutputBucket"


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


# The functions' time budgets are the engine's to keep. {% comment %}
# This repository: the engine's time budgets, read from its code.
def seconds(path, name):
    """A `Duration` constant of the Rust source, `from_secs(n)` or a sum of others."""
    text = (ROOT / path).read_text()
    m = re.search(rf"const {name}: Duration = Duration::from_secs\((\d+)\)", text)
    return int(m.group(1))


def test_the_time_budgets_fit_for_every_allowed_parameter_value():
    """The work queue's visibility timeout covers six worker timeouts plus the longest
    batch window the template allows; the worker's timeout leaves its work time after
    the margin kept for reporting the batch (REPORT_MARGIN: one whole DynamoDB call and
    the answer) and a whole download; the receiver's leaves time for its three writes."""
    worker = RESOURCES["WorkerFunction"]["Properties"]
    window = TEMPLATE["Parameters"]["WorkerBatchWindowSeconds"]["MaxValue"]
    visibility = int(RESOURCES["WorkQueue"]["Properties"]["VisibilityTimeout"])
    assert visibility >= 6 * worker["Timeout"] + window
    work = (ROOT / "shared/src/worker/claim.rs").read_text()
    assert "REPORT_MARGIN: Duration = OPERATION_TIMEOUT.saturating_add(ANSWER_MARGIN)" in work
    operation = seconds("shared/src/adapters/mod.rs", "OPERATION_TIMEOUT")
    answer = seconds("shared/src/deadline.rs", "ANSWER_MARGIN")
    download = re.search(r'"DOWNLOAD_TIMEOUT_SECS", (\d+)', (ROOT / "shared/src/worker/config.rs").read_text())
    assert worker["Timeout"] > operation + answer + int(download.group(1))
    # The receiver answers ANSWER_MARGIN before its deadline, and one write fits.
    assert RESOURCES["ReceiverFunction"]["Properties"]["Timeout"] > operation + answer
# {% endcomment %}


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
    assert TEMPLATE["Globals"]["Function"]["Tags"] == {"project": "ProjectName"}
    assert TEMPLATE["Globals"]["Function"]["PropagateTags"] is True
    taggable = (
        "AWS::DynamoDB::Table",
        "AWS::SQS::Queue",
        "AWS::S3::Bucket",
        "AWS::Logs::LogGroup",
        "AWS::CloudWatch::Alarm",
    )
    for name, resource in RESOURCES.items():
        if resource["Type"] in taggable:
            assert {"Key": "project", "Value": "ProjectName"} in resource["Properties"].get("Tags", []), name


def test_the_workers_queue_scales_by_itself_unless_provisioned_pollers_are_asked_for():
    """Provisioned mode (ProvisionedPollerConfig) and MaximumConcurrency are exclusive on
    AWS: the mapping CloudFormation gets carries one or the other, under one condition,
    and by default neither pollers nor their bill."""
    import translated

    assert TEMPLATE["Parameters"]["WorkerMinimumPollers"]["Default"] == 0
    assert TEMPLATE["Conditions"]["WorkerProvisioned"] == [["WorkerMinimumPollers", 0]]
    (mapping,) = [
        m for m in translated.resources("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"].get("FunctionName", {}).get("Ref") == "WorkerFunction"
    ]
    properties = mapping["Properties"]
    assert properties["ScalingConfig"] == {
        "Fn::If": ["WorkerProvisioned", {"Ref": "AWS::NoValue"}, {"MaximumConcurrency": {"Ref": "WorkerMaxConcurrency"}}]
    }
    assert properties["ProvisionedPollerConfig"] == {
        "Fn::If": [
            "WorkerProvisioned",
            {"MinimumPollers": {"Ref": "WorkerMinimumPollers"}, "MaximumPollers": {"Ref": "WorkerMaximumPollers"}},
            {"Ref": "AWS::NoValue"},
        ]
    }
    # AWS's own bounds for an SQS source: at least 2 pollers, at most 200 kept ready;
    # 1 is refused by a rule before anything is deployed.
    minimum = TEMPLATE["Parameters"]["WorkerMinimumPollers"]
    assert (minimum["MinValue"], minimum["MaxValue"]) == (0, 200)
    assert [a["Assert"] for a in TEMPLATE["Rules"]["WorkerPollers"]["Assertions"]] == [[["WorkerMinimumPollers", "1"]]]
    assert TEMPLATE["Parameters"]["WorkerMaximumPollers"]["MinValue"] == 2
