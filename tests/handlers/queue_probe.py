"""An SQS-triggered function for the event source tests: each record's JSON body says what to do with it.

{"sleep_s": N} sleeps first; {"visibility_s": N} sets the record's visibility timeout, as a function waiting out a
provider's Retry-After does; {"fail": true} reports the record in batchItemFailures. The start and the end of every
delivery are appended, one JSON line each, to the file that DELIVERIES names.
"""

import json
import os
import time

import boto3


def lambda_handler(event, context):
    failures = []
    for record in event["Records"]:
        order = json.loads(record["body"])
        _note("start", record)
        time.sleep(order.get("sleep_s", 0))
        if "visibility_s" in order:
            _change_visibility(record, order["visibility_s"])
        if order.get("fail"):
            failures.append({"itemIdentifier": record["messageId"]})
        _note("end", record)
    return {"batchItemFailures": failures}


def _change_visibility(record, seconds):
    sqs = boto3.client("sqs")
    queue_url = sqs.get_queue_url(QueueName=record["eventSourceARN"].rsplit(":", 1)[1])["QueueUrl"]
    sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=seconds)


def _note(moment, record):
    line = {"moment": moment, "id": record["messageId"], "pid": os.getpid()}
    with open(os.environ["DELIVERIES"], "a") as deliveries:
        deliveries.write(json.dumps(line) + "\n")
