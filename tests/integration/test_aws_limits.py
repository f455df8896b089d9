"""Limits AWS holds and moto alone lets pass, held by the local AWS: each refused with the service's own error."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from local.aws.emulator import LocalAws
from local.aws.server import BATCH_WRITE_MAX_REQUESTS, PUT_EVENTS_MAX_BYTES, S3_KEY_MAX_BYTES

TABLE = "limits"
SOURCE, DETAIL_TYPE = "sharelink", "Share Created"


def puts(count: int) -> dict[str, list[dict[str, object]]]:
    return {TABLE: [{"PutRequest": {"Item": {"id": {"S": f"item-{number}"}}}} for number in range(count)]}


def entries_of(total_bytes: int, count: int = 2) -> list[dict[str, str]]:
    """`count` entries whose sizes, by EventBridge's rule, add up to `total_bytes`."""
    each = total_bytes // count
    padding = each - len(SOURCE) - len(DETAIL_TYPE) - len(json.dumps({"pad": ""}))
    return [{"Source": SOURCE, "DetailType": DETAIL_TYPE, "Detail": json.dumps({"pad": "x" * padding})}] * count


@pytest.fixture
def dynamodb(fresh_aws: LocalAws):
    client = fresh_aws.client("dynamodb")
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return client


def test_a_batch_write_of_more_than_25_requests_is_refused(dynamodb):
    taken = dynamodb.batch_write_item(RequestItems=puts(BATCH_WRITE_MAX_REQUESTS))
    with pytest.raises(ClientError) as refused:
        dynamodb.batch_write_item(RequestItems=puts(BATCH_WRITE_MAX_REQUESTS + 1))

    assert taken["UnprocessedItems"] == {}
    assert refused.value.response["Error"] == {
        "Code": "ValidationException",
        "Message": "Too many items requested for the BatchWriteItem call",
    }
    assert dynamodb.scan(TableName=TABLE, Select="COUNT")["Count"] == BATCH_WRITE_MAX_REQUESTS


def test_a_put_events_call_of_256_kb_or_more_is_refused(fresh_aws):
    events = fresh_aws.client("events")

    taken = events.put_events(Entries=entries_of(PUT_EVENTS_MAX_BYTES - 2))
    with pytest.raises(ClientError) as refused:
        events.put_events(Entries=entries_of(PUT_EVENTS_MAX_BYTES))

    assert taken["FailedEntryCount"] == 0
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert refused.value.response["Error"]["Message"] == "Total size of the entries in the request is over the limit."


def test_an_object_key_over_1024_bytes_of_utf8_is_refused(fresh_aws):
    s3 = fresh_aws.client("s3")
    s3.create_bucket(Bucket="limits")
    longest = "报" * (S3_KEY_MAX_BYTES // 3) + "x"  # 1,023 + 1 bytes

    s3.put_object(Bucket="limits", Key=longest, Body=b"")
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket="limits", Key=longest + "x", Body=b"")
    with pytest.raises(ClientError) as refused_multipart:
        s3.create_multipart_upload(Bucket="limits", Key=longest + "x")

    for refusal in (refused, refused_multipart):
        assert refusal.value.response["Error"]["Code"] == "KeyTooLongError"
        assert refusal.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert [entry["Key"] for entry in s3.list_objects_v2(Bucket="limits")["Contents"]] == [longest]


def test_a_messages_12_hours_of_visibility_count_from_its_latest_receive(fresh_aws):
    sqs = fresh_aws.client("sqs")
    queue = sqs.create_queue(QueueName="limits")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody="{}", DelaySeconds=2)  # sent 2 s before it can be received
    (message,) = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=10)["Messages"]
    handle = {"QueueUrl": queue, "ReceiptHandle": message["ReceiptHandle"]}

    sqs.change_message_visibility(**handle, VisibilityTimeout=12 * 3600 - 1)  # counted from the sending: refused
    with pytest.raises(ClientError) as refused:
        sqs.change_message_visibility(**handle, VisibilityTimeout=12 * 3600)

    assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert "beyond the limit [43200 seconds]" in refused.value.response["Error"]["Message"]
