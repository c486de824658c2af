"""Creates the table and queues of resources.json on the local emulators, and prints
their names and URLs as shell assignments. resources.json is the one definition;
template.yaml mirrors it and tests/test_template.py checks that the two agree."""

import json
import os
import pathlib
import sys

import boto3

HERE = pathlib.Path(__file__).parent


def resources():
    return json.loads((HERE / "resources.json").read_text())


def client(service):
    return boto3.client(
        service,
        region_name=os.environ["AWS_REGION"],
        endpoint_url=os.environ[f"AWS_ENDPOINT_URL_{service.upper()}"],
    )


def create_table(spec):
    ddb = client("dynamodb")
    ttl = spec.pop("TimeToLiveAttribute")
    try:
        ddb.create_table(**spec)
    except ddb.exceptions.ResourceInUseException:
        add_missing_indexes(ddb, spec)
        return spec["TableName"]
    ddb.get_waiter("table_exists").wait(TableName=spec["TableName"])
    ddb.update_time_to_live(
        TableName=spec["TableName"],
        TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl},
    )
    return spec["TableName"]


def add_missing_indexes(ddb, spec):
    """A table kept from an earlier version (make dev's --persist) gains new indexes."""
    table = ddb.describe_table(TableName=spec["TableName"])["Table"]
    have = {index["IndexName"] for index in table.get("GlobalSecondaryIndexes", [])}
    for index in spec["GlobalSecondaryIndexes"]:
        if index["IndexName"] in have:
            continue
        ddb.update_table(
            TableName=spec["TableName"],
            AttributeDefinitions=spec["AttributeDefinitions"],
            GlobalSecondaryIndexUpdates=[{"Create": index}],
        )
        ddb.get_waiter("table_exists").wait(TableName=spec["TableName"])


def create_queues(queue, dlq, redrive):
    sqs = client("sqs")
    # The local stack may shorten the visibility timeout so failed messages come back
    # (and poison reaches the DLQ) in seconds; AWS keeps the definition's value.
    if os.environ.get("LOCAL_VISIBILITY_TIMEOUT"):
        queue["Attributes"]["VisibilityTimeout"] = os.environ["LOCAL_VISIBILITY_TIMEOUT"]
    dlq_url = sqs.create_queue(QueueName=dlq["QueueName"], Attributes=dlq["Attributes"])["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": redrive["maxReceiveCount"]}
    attributes = dict(queue["Attributes"], RedrivePolicy=json.dumps(policy))
    queue_url = sqs.create_queue(QueueName=queue["QueueName"], Attributes=attributes)["QueueUrl"]
    return queue_url, dlq_url


def main():
    spec = resources()
    table = create_table(spec["table"])
    queue_url, dlq_url = create_queues(spec["queue"], spec["dlq"], spec["redrive"])
    print(f"TABLE_NAME={table}")
    print(f"QUEUE_URL={queue_url}")
    print(f"DLQ_URL={dlq_url}")


if __name__ == "__main__":
    sys.exit(main())
