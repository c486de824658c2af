"""The offline deploy check: template.yaml translated as `sam deploy` would
(translated.py), read as a first deploy and a production incident would read it.
No AWS account is reachable from here, so what can be settled offline is settled here."""

import json

import pytest

from translated import resources, translated

# Each resource type with the property that would give it a fixed physical name. A
# fixed name makes a second stack of the template in one account and region fail.
NAMED = {
    "AWS::DynamoDB::Table": "TableName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::IAM::Role": "RoleName",
    "AWS::Scheduler::Schedule": "Name",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::CloudWatch::Alarm": "AlarmName",
}
# The types with no physical name of their own (or one CloudFormation always makes).
UNNAMED = {
    "AWS::S3::BucketPolicy",
    "AWS::Lambda::Url",
    "AWS::Lambda::Permission",
    "AWS::Lambda::EventSourceMapping",
    "AWS::Lambda::EventInvokeConfig",
}
FUNCTIONS = ["ReceiverFunction", "WorkerFunction", "ReconcilerFunction"]


def stack_scoped(value):
    """A name made from the stack's, so two stacks never share it."""
    return "AWS::StackName" in json.dumps(value)


def test_every_resource_type_is_known_to_this_check():
    unknown = {r["Type"] for r in resources().values()} - set(NAMED) - UNNAMED
    assert not unknown, f"say whether {unknown} take a physical name, in NAMED or UNNAMED"


@pytest.mark.parametrize("name", sorted(resources()))
def test_no_resource_has_a_fixed_physical_name(name):
    resource = resources()[name]
    prop = NAMED.get(resource["Type"])
    value = resource.get("Properties", {}).get(prop) if prop else None
    assert value is None or stack_scoped(value), f"{name}: {prop} = {value!r} is the same in every stack"


def test_the_check_of_physical_names_can_fail():
    assert not stack_scoped("ReconcilerFunctionSchedule")
    assert stack_scoped({"Fn::Sub": "/aws/lambda/${AWS::StackName}-receiver"})


def test_the_function_url_is_public_and_only_the_url_may_invoke_the_receiver_publicly():
    permissions = [r["Properties"] for r in resources("AWS::Lambda::Permission").values()]
    url = [p for p in permissions if p["Action"] == "lambda:InvokeFunctionUrl"]
    invoke = [p for p in permissions if p["Action"] == "lambda:InvokeFunction"]
    assert [(p["Principal"], p["FunctionUrlAuthType"]) for p in url] == [("*", "NONE")]
    # Since October 2025 a public URL needs lambda:InvokeFunction too, limited to
    # invocations through the URL: without it every delivery gets a 403.
    assert [(p["Principal"], p.get("InvokedViaFunctionUrl")) for p in invoke] == [("*", True)]
    for p in url + invoke:
        assert p["FunctionName"] == {"Ref": "ReceiverFunction"}
    (config,) = [r["Properties"] for r in resources("AWS::Lambda::Url").values()]
    assert config["AuthType"] == "NONE"


def alarms():
    return [r["Properties"] for r in resources("AWS::CloudWatch::Alarm").values()]


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_each_functions_errors_and_throttles_are_alarmed(function, metric):
    found = [
        a
        for a in alarms()
        if a["Namespace"] == "AWS/Lambda"
        and a["MetricName"] == metric
        and a["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function}}]
    ]
    assert len(found) == 1, f"{function}: {metric}"
    assert found[0]["Threshold"] == 0 and found[0]["ComparisonOperator"] == "GreaterThanThreshold"


def test_signature_failures_are_alarmed():
    names = {a["MetricName"] for a in alarms() if a["Namespace"] == {"Ref": "AWS::StackName"}}
    assert {"SignatureFailures", "WorkFailed", "MissingEvent", "Expired"} <= names


def custom_alarms(function):
    """{metric: alarm} of the alarms on the stack's own metrics of `function`."""
    return {
        a["MetricName"]: a
        for a in alarms()
        if a["Namespace"] == {"Ref": "AWS::StackName"} and a["Dimensions"] == [{"Name": "Function", "Value": function}]
    }


def test_a_reconciler_whose_calls_fail_or_that_learns_nothing_is_alarmed():
    # A revoked token answers 401 to every GET: the run still succeeds (no Errors of the
    # invocation), so only its own counts can say so.
    reconciler = custom_alarms("reconciler")
    assert {"Errors", "LearnedNothing"} <= set(reconciler), sorted(reconciler)
    # Two blind runs in a quarter hour (of three at the default schedule): not a blip.
    blind = reconciler["LearnedNothing"]
    assert (blind["Period"], blind["Threshold"], blind["ComparisonOperator"]) == (900, 2, "GreaterThanOrEqualToThreshold")
    assert reconciler["Errors"]["DatapointsToAlarm"] == 2, "a failure of one run is tried again by the next"


def test_every_alarm_says_when_it_clears_as_it_says_when_it_fires():
    for alarm in alarms():
        assert alarm["OKActions"] == alarm["AlarmActions"], alarm["AlarmDescription"]


def test_a_failed_reconciler_run_is_not_retried_and_goes_to_its_dead_letter_queue():
    (config,) = [r["Properties"] for r in resources("AWS::Lambda::EventInvokeConfig").values()]
    assert config["MaximumRetryAttempts"] == 0
    assert config["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": "ReconcilerDeadLetterQueue.Arn"}
    assert config["FunctionName"] == {"Ref": "ReconcilerFunction"}


def test_the_data_outlives_a_deleted_or_replaced_stack():
    for name in ["Table", "OutputBucket", "WorkDeadLetterQueue"]:
        resource = resources()[name]
        assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("Retain", "Retain"), name


def test_the_table_uses_the_aws_owned_key_unless_a_key_is_given():
    sse = resources()["Table"]["Properties"]["SSESpecification"]
    condition, given, default = sse["Fn::If"]
    assert condition == "HasTableKmsKey"
    assert given == {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": {"Ref": "TableKmsKeyArn"}}
    assert default == {"Ref": "AWS::NoValue"}, "the AWS owned key: no SSEEnabled, no KMS charges"


@pytest.mark.parametrize("function", ["ReceiverFunction", "ReconcilerFunction"])
def test_a_reservation_of_zero_reserves_nothing(function):
    reserved = resources()[function]["Properties"]["ReservedConcurrentExecutions"]
    assert reserved["Fn::If"][2] == {"Ref": "AWS::NoValue"}


def statements(role):
    """The role's own statements: those the template wrote (SAM names them
    `<Role>Policy<N>`), not those SAM adds for an event source or a destination."""
    found = []
    for policy in resources()[role]["Properties"].get("Policies", []):
        # A policy under a condition (`!If [c, policy, !Ref AWS::NoValue]`) counts as
        # given: the check is of what the template can grant.
        for branch in policy["Fn::If"][1:] if "Fn::If" in policy else [policy]:
            if branch.get("PolicyName", "").startswith(role + "Policy"):
                found += branch["PolicyDocument"]["Statement"]
    return found


def test_every_secret_is_granted_by_its_full_or_partial_arn():
    text = json.dumps([statements(f"{f}Role") for f in FUNCTIONS])
    for parameter in ["AccessTokenSecretArn", "WebhookSecretArn"]:
        assert "${%s}-??????" % parameter in text, parameter


def test_the_reconcilers_deletes_are_held_to_its_own_items():
    deletes = [s for s in statements("ReconcilerFunctionRole") if s["Action"] == "dynamodb:DeleteItem"]
    assert [s["Condition"] for s in deletes] == [{"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["RECONCILER"]}}]


def test_the_translation_is_of_this_template():
    assert "ReceiverFunction" in translated()["Resources"]
