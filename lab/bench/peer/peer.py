"""The Python peer for `make bench`: the receiver's job as a Python user would write it,
with Powertools for AWS Lambda (its idempotency utility on DynamoDB) and boto3.

Same table, same checks (size, content type, JSON, signature, a prediction we created,
checked by a conditional write), same enqueue. Powertools' idempotency record answers a
repeat of a completed delivery with the saved answer, without writing or sending again
(ours, since issue 34, sends a repeat of work not done yet again and confirms no send;
a repeat of done work costs both one failed write). Clients are built once, at import
(init).
"""

import base64
import hashlib
import hmac
import json
import os
import time

import boto3
from botocore.config import Config
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

TABLE = os.environ["TABLE_NAME"]
QUEUE_URL = os.environ["QUEUE_URL"]
SECRETS = [s for s in (os.environ.get("WRIFTAI_WEBHOOK_SECRET"), os.environ.get("WRIFTAI_WEBHOOK_PREVIOUS_SECRET")) if s]
MAX_BODY = int(os.environ.get("MAX_BODY_BYTES", "6291456"))
TOLERANCE = int(os.environ.get("WEBHOOK_TOLERANCE_SECS", "300"))
ACT_ON = set(os.environ.get("ACT_ON_STATUSES", "succeeded,failed,cancelled,abandoned").split(","))
RANK = {"pending": 0, "starting": 1, "started": 2, "succeeded": 3, "failed": 3, "cancelled": 3, "abandoned": 3}
TTL = int(os.environ.get("EVENT_TTL_DAYS", "30")) * 86400

_config = Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 3, "mode": "standard"})
# Lambda sets both; the local stack sets only AWS_REGION, which boto3 does not read.
_region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
ddb = boto3.client("dynamodb", region_name=_region, config=_config)
sqs = boto3.client("sqs", region_name=_region, config=_config)
persistence = DynamoDBPersistenceLayer(table_name=TABLE, key_attr="pk", sort_key_attr="sk", boto3_client=ddb)
# Keyed on (prediction, status), as ours is, not on the whole payload.
idempotency = IdempotencyConfig(event_key_jmespath="[id, status]", expires_after_seconds=TTL)


class UnknownPrediction(Exception):
    """Raised inside the idempotent function, so Powertools deletes its record."""


def answer(status, body, headers=None):
    return {"statusCode": status, "headers": {"content-type": "application/json", **(headers or {})}, "body": json.dumps(body)}


def refuse(status, code):
    return answer(status, {"error": code, "message": code.replace("_", " ")})


def signature_ok(header, raw):
    if not SECRETS:
        return True
    if not header:
        return False
    parts = [p.split("=", 1) for p in header.split(",") if "=" in p]
    ts = next((v for k, v in parts if k == "t"), None)
    if ts is None or not ts.isdigit() or abs(time.time() - int(ts)) > TOLERANCE:
        return False
    signed = ts.encode() + b"." + raw
    wanted = [hmac.new(s.encode(), signed, hashlib.sha256).hexdigest() for s in SECRETS]
    return any(hmac.compare_digest(v, w) for k, v in parts if k == "v1" for w in wanted)


@idempotent_function(data_keyword_argument="delivery", persistence_store=persistence, config=idempotency)
def record_and_enqueue(delivery):
    pid, status, raw = delivery["id"], delivery["status"], delivery["raw"]
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    key = {"pk": {"S": f"PRED#{pid}"}}
    rank = RANK.get(status)
    expression = "SET #status = :status, #rank = :rank, last_event_at = :now"
    if rank == 3:
        expression += " REMOVE open_pk, open_since"
    event = {**key, "sk": {"S": f"EVENT#{status}"}, "status": {"S": status}, "received_at": {"S": now},
             "expires_at": {"N": str(int(time.time()) + TTL)}, "payload": {"S": raw}}
    try:
        ddb.transact_write_items(TransactItems=[
            {"Update": {"TableName": TABLE, "Key": {**key, "sk": {"S": "PRED"}}, "UpdateExpression": expression,
                        "ConditionExpression": "attribute_exists(pk) AND (attribute_not_exists(#rank) OR #rank < :rank)",
                        "ExpressionAttributeNames": {"#status": "status", "#rank": "rank"},
                        "ExpressionAttributeValues": {":status": {"S": status}, ":rank": {"N": str(rank)}, ":now": {"S": now}},
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
            {"Put": {"TableName": TABLE, "Item": event, "ConditionExpression": "attribute_not_exists(pk)"}},
        ])
    except ddb.exceptions.TransactionCanceledException as err:
        reasons = err.response.get("CancellationReasons", [])
        if reasons and reasons[0].get("Code") == "ConditionalCheckFailed" and "Item" not in reasons[0]:
            raise UnknownPrediction(pid) from err
        return {"outcome": "out_of_order"}
    if status in ACT_ON:
        body = '{"prediction_id":"%s","status":"%s","payload":%s}' % (pid, status, raw)
        sqs.send_message(QueueUrl=QUEUE_URL, MessageBody=body)
    return {"outcome": "recorded"}


def handler(event, context):
    idempotency.register_lambda_context(context)
    method = event.get("requestContext", {}).get("http", {}).get("method")
    if method != "POST":
        return answer(405, {"error": "method_not_allowed", "message": "POST only"}, {"allow": "POST"})
    headers = event.get("headers") or {}
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    if len(raw) > MAX_BODY:
        return refuse(413, "payload_too_large")
    if headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        return refuse(415, "unsupported_media_type")
    if not signature_ok(headers.get("wriftai-webhook-signature"), raw):
        return refuse(401, "signature_mismatch")
    try:
        prediction = json.loads(raw)
    except ValueError:
        return refuse(400, "malformed_json")
    if not isinstance(prediction, dict) or not isinstance(prediction.get("id"), str) or not isinstance(prediction.get("status"), str):
        return refuse(400, "missing_fields")
    if prediction["status"] not in RANK:
        return answer(200, {"outcome": "recorded"})
    try:
        result = record_and_enqueue(delivery={"id": prediction["id"], "status": prediction["status"], "raw": raw.decode()})
    except UnknownPrediction:
        return refuse(429, "unknown_prediction") | {"headers": {"content-type": "application/json", "retry-after": "30"}}
    return answer(200, result)
