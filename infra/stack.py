"""Creates the stack's tables, queues and buckets of template.yaml on the local
emulators, and prints, as shell assignments, every function variable the template
sets to one of them (`TABLE_NAME: !Ref Table`, `QUEUE_URL: !Ref WorkQueue`, ...),
plus DLQ_URL, the dead-letter queue of QUEUE_URL's queue. template.yaml is the one
definition: a resource added there exists locally at the next `make up`."""

import json
import os
import pathlib
import re
import sys

import boto3
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]


def setting(name):
    """A setting of project.mk (`NAME := value`, the last one, as make reads it): the
    project's name, region, statuses."""
    return re.findall(rf"^{name} := (.+)$", (ROOT / "project.mk").read_text(), re.M)[-1].strip()


PREFIX = setting("PROJECT")


class CloudFormationLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags as their long form (`!Ref X` as
    `{"Ref": "X"}`, `!GetAtt X.Arn` as `{"Fn::GetAtt": "X.Arn"}`)."""


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


CloudFormationLoader.add_multi_constructor("!", _tag)


def template():
    return yaml.load((ROOT / "template.yaml").read_text(), Loader=CloudFormationLoader)


def local_name(logical):
    """`WorkQueue` -> `<project>-work-queue`."""
    return f"{PREFIX}-" + re.sub(r"(?<!^)(?=[A-Z])", "-", logical).lower()


def of_type(resources, kind):
    return {name: r.get("Properties", {}) for name, r in resources.items() if r["Type"] == kind}


def parameter(tmpl, value):
    """A literal, or a `!Ref` to a parameter, as its default."""
    if isinstance(value, dict) and "Ref" in value:
        return tmpl["Parameters"][value["Ref"]]["Default"]
    return value


def table_spec(logical, props):
    """create_table's arguments and the TTL attribute, from a table's properties."""
    spec = {
        "TableName": local_name(logical),
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
    }
    if props.get("GlobalSecondaryIndexes"):
        spec["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    ttl = props.get("TimeToLiveSpecification", {})
    return spec, ttl.get("AttributeName") if ttl.get("Enabled") else None


# The queue properties the emulator applies; the rest (encryption, tags) are AWS's.
QUEUE_ATTRIBUTES = ["VisibilityTimeout", "MessageRetentionPeriod", "MaximumMessageSize", "DelaySeconds"]


def queue_order(queues):
    """Dead-letter queues before the queues that send to them."""
    targets = lambda props: props.get("RedrivePolicy", {}).get("deadLetterTargetArn", {}).get("Fn::GetAtt", "")
    return sorted(queues, key=lambda name: bool(targets(queues[name])))


def queue_attributes(tmpl, props, arns):
    """The attributes of a queue; `arns` maps logical IDs to the ARNs already made."""
    attributes = {name: str(parameter(tmpl, props[name])) for name in QUEUE_ATTRIBUTES if name in props}
    # The local stack may shorten the visibility timeout so failed messages come back
    # (and poison reaches the DLQ) in seconds; AWS keeps the template's value.
    if "VisibilityTimeout" in attributes and os.environ.get("LOCAL_VISIBILITY_TIMEOUT"):
        attributes["VisibilityTimeout"] = os.environ["LOCAL_VISIBILITY_TIMEOUT"]
    if "RedrivePolicy" in props:
        redrive = props["RedrivePolicy"]
        target = redrive["deadLetterTargetArn"]["Fn::GetAtt"].split(".")[0]
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": arns[target], "maxReceiveCount": int(parameter(tmpl, redrive["maxReceiveCount"]))}
        )
    return attributes


def variables(tmpl, made):
    """Every function variable (Globals and each function's) that the template sets to
    `!Ref` one of the resources made here, with its local value."""
    found = {}
    blocks = [tmpl.get("Globals", {}).get("Function", {})]
    blocks += [r.get("Properties", {}) for r in tmpl["Resources"].values() if r["Type"] == "AWS::Serverless::Function"]
    for block in blocks:
        for name, value in block.get("Environment", {}).get("Variables", {}).items():
            if isinstance(value, dict) and value.get("Ref") in made:
                found[name] = made[value["Ref"]]
    return found


def client(service):
    return boto3.client(
        service,
        region_name=os.environ["AWS_REGION"],
        endpoint_url=os.environ[f"AWS_ENDPOINT_URL_{service.upper()}"],
    )


def create_table(spec, ttl):
    ddb = client("dynamodb")
    try:
        ddb.create_table(**spec)
    except ddb.exceptions.ResourceInUseException:
        add_missing_indexes(ddb, spec)
        return
    ddb.get_waiter("table_exists").wait(TableName=spec["TableName"])
    if ttl:
        ddb.update_time_to_live(
            TableName=spec["TableName"], TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl}
        )


def add_missing_indexes(ddb, spec):
    """A table kept from an earlier version (make dev's --persist) gains new indexes."""
    table = ddb.describe_table(TableName=spec["TableName"])["Table"]
    have = {index["IndexName"] for index in table.get("GlobalSecondaryIndexes", [])}
    for index in spec.get("GlobalSecondaryIndexes", []):
        if index["IndexName"] in have:
            continue
        ddb.update_table(
            TableName=spec["TableName"],
            AttributeDefinitions=spec["AttributeDefinitions"],
            GlobalSecondaryIndexUpdates=[{"Create": index}],
        )
        ddb.get_waiter("table_exists").wait(TableName=spec["TableName"])


def main():
    tmpl = template()
    resources = tmpl["Resources"]
    made = {}  # logical ID -> what `!Ref` gives: a table's or bucket's name, a queue's URL
    for logical, props in of_type(resources, "AWS::DynamoDB::Table").items():
        spec, ttl = table_spec(logical, props)
        create_table(spec, ttl)
        made[logical] = spec["TableName"]

    sqs = client("sqs")
    queues = of_type(resources, "AWS::SQS::Queue")
    arns, dead_letter = {}, {}
    for logical in queue_order(queues):
        attributes = queue_attributes(tmpl, queues[logical], arns)
        url = sqs.create_queue(QueueName=local_name(logical), Attributes=attributes)["QueueUrl"]
        arns[logical] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        made[logical] = url
        if "RedrivePolicy" in attributes:
            dead_letter[url] = json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"]

    buckets = of_type(resources, "AWS::S3::Bucket")
    if buckets:
        s3 = client("s3")
        for logical in buckets:
            s3.create_bucket(Bucket=local_name(logical))
            made[logical] = local_name(logical)

    found = variables(tmpl, made)
    for name, value in sorted(found.items()):
        print(f"{name}={value}")
    if found.get("QUEUE_URL") in dead_letter:
        dlq = next(made[q] for q, arn in arns.items() if arn == dead_letter[found["QUEUE_URL"]])
        print(f"DLQ_URL={dlq}")


if __name__ == "__main__":
    sys.exit(main())
