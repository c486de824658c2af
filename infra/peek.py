"""Takes the work messages off the local queue and prints them (make dev's demo)."""

import json
import os

import boto3

sqs = boto3.client("sqs", region_name=os.environ["AWS_REGION"])
while True:
    out = sqs.receive_message(QueueUrl=os.environ["QUEUE_URL"], MaxNumberOfMessages=10, WaitTimeSeconds=1)
    if not out.get("Messages"):
        break
    for message in out["Messages"]:
        body = json.loads(message["Body"])
        payload = body.get("payload") or {}
        print(f"  message: prediction {body['prediction_id']} {body['status']}, output {json.dumps(payload.get('output'))}")
        sqs.delete_message(QueueUrl=os.environ["QUEUE_URL"], ReceiptHandle=message["ReceiptHandle"])
