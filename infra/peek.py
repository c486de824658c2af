"""make dev's window on the local stack: what the simulator delivered for a prediction,
and its items in the table once the worker has run."""

import json
import os
import sys
import time
import urllib.request

import boto3

REGION = os.environ["AWS_REGION"]
TERMINAL = ("succeeded", "failed", "cancelled", "abandoned")
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


def worked(items):
    """Whether the prediction is finished and the work of each event that has any is
    done, whatever the work stores."""
    finished = any(i["sk"]["S"] == "PRED" and i.get("status", {}).get("S") in TERMINAL for i in items)
    events = [i for i in items if i["sk"]["S"].startswith("EVENT#") and "enqueue" in i]
    return finished and all(i.get("work", {}).get("S") == "done" for i in events)


def table_when_worked(prediction_id, wait=60):
    """The items once the prediction is finished and its work done."""
    ddb = boto3.client("dynamodb", region_name=REGION)
    deadline = time.time() + wait
    query = {
        "TableName": os.environ["TABLE_NAME"],
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": f"PRED#{prediction_id}"}},
        "ConsistentRead": True,
    }
    while not worked(ddb.query(**query)["Items"]) and time.time() < deadline:
        time.sleep(0.3)
    table(prediction_id)


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"deliveries": deliveries, "table": table, "worked": table_when_worked}[command](*args)
