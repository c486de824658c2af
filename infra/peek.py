"""make dev's window on the local stack: a prediction's items in the table, what the
simulator delivered for it, and the work messages on the queue."""

import json
import os
import sys
import time
import urllib.request

import boto3

REGION = os.environ["AWS_REGION"]
SIM = os.environ["WRIFTAI_API_BASE_URL"].removesuffix("/v1")


def deliveries(prediction_id, terminal_wait=20):
    """Waits until the simulator has delivered a terminal status, then lists attempts."""
    deadline = time.time() + terminal_wait
    while True:
        with urllib.request.urlopen(f"{SIM}/_sim/deliveries?prediction_id={prediction_id}") as r:
            attempts = json.load(r)
        done = any(a["status"] in ("succeeded", "failed", "cancelled") and a["outcome"] == {"http": 200} for a in attempts)
        if done or time.time() > deadline:
            break
        time.sleep(0.2)
    for a in attempts:
        flags = " (duplicate)" if a.get("duplicate") else " (reordered)" if a.get("reordered") else ""
        print(f"  webhook {a['status']:<10} attempt {a['attempt']} -> {a['outcome']}{flags}")


def table(prediction_id):
    ddb = boto3.client("dynamodb", region_name=REGION)
    out = ddb.query(
        TableName=os.environ["TABLE_NAME"],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"PRED#{prediction_id}"}},
    )
    for item in out["Items"]:
        plain = {k: next(iter(v.values())) for k, v in item.items() if k not in ("pk", "payload")}
        print(f"  item {plain.pop('sk'):<16} {json.dumps(plain)}")


def queue():
    sqs = boto3.client("sqs", region_name=REGION)
    while True:
        out = sqs.receive_message(QueueUrl=os.environ["QUEUE_URL"], MaxNumberOfMessages=10, WaitTimeSeconds=1)
        if not out.get("Messages"):
            break
        for message in out["Messages"]:
            body = json.loads(message["Body"])
            payload = body.get("payload") or {}
            print(f"  message {body['prediction_id']} {body['status']}, output {json.dumps(payload.get('output'))}")
            sqs.delete_message(QueueUrl=os.environ["QUEUE_URL"], ReceiptHandle=message["ReceiptHandle"])


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"deliveries": deliveries, "table": table, "queue": queue}[command](*args)
