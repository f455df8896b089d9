"""Share requests through the real path of the local stack: S3 put -> notification -> SQS -> events function."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote_plus

import pytest

from local.stack import LocalStack

PAN123_CREATE = "/api/v1/share/create"
WAIT_S = 60


@pytest.fixture(scope="module", autouse=True)
def observed_events_queue(stack: LocalStack) -> None:
    observe_events(stack)


@pytest.fixture(autouse=True)
def no_leftover_faults(stack: LocalStack) -> Iterator[None]:
    yield
    for sim in stack.sims.values():
        sim.faults.clear()


def observe_events(stack: LocalStack) -> None:
    """An EventBridge rule that copies sharelink's events into a queue the tests read."""
    sqs, events = stack.aws.client("sqs"), stack.aws.client("events")
    url = sqs.create_queue(QueueName="observed-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="observe", EventPattern=json.dumps({"source": ["sharelink"]}))
    events.put_targets(Rule="observe", Targets=[{"Id": "observer", "Arn": arn}])


def wait_for[T](probe: Callable[[], T | None], what: str) -> T:
    """Poll until `probe` answers something; bounded, so a lost message fails the test instead of hanging it."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what}")


def bucket(stack: LocalStack) -> str:
    return stack.template.physical_name("ShareRequestsBucket")


def put_request(stack: LocalStack, provider: str, name: str, body: Any) -> str:
    key = f"requests/{provider}/{name}"
    document = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    stack.aws.client("s3").put_object(Bucket=bucket(stack), Key=key, Body=document)
    return key


def result_of(stack: LocalStack, key: str) -> dict | None:
    s3 = stack.aws.client("s3")
    try:
        stored = s3.get_object(Bucket=bucket(stack), Key="results/" + key.removeprefix("requests/"))
    except s3.exceptions.NoSuchKey:
        return None
    return json.loads(stored["Body"].read())


def wait_for_result(stack: LocalStack, key: str) -> dict:
    return wait_for(lambda: result_of(stack, key), f"the result of {key}")


def queue_depth(stack: LocalStack, queue_id: str) -> int:
    sqs = stack.aws.client("sqs")
    url = stack.aws.queue_url(stack.template.physical_name(queue_id))
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[name]) for name in names)


def send_notification(stack: LocalStack, provider_queue: str, key: str) -> None:
    """Deliver an S3 notification for `key` again, as at-least-once delivery may."""
    head = stack.aws.client("s3").head_object(Bucket=bucket(stack), Key=key)
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "bucket": {"name": bucket(stack), "arn": f"arn:aws:s3:::{bucket(stack)}"},
            "object": {
                "key": quote_plus(key),
                "size": head["ContentLength"],
                "eTag": head["ETag"].strip('"'),
                "versionId": head["VersionId"],
            },
        },
    }
    url = stack.aws.queue_url(stack.template.physical_name(provider_queue))
    stack.aws.client("sqs").send_message(QueueUrl=url, MessageBody=json.dumps({"Records": [record]}))


def observed_events(stack: LocalStack) -> list[dict]:
    sqs = stack.aws.client("sqs")
    url = sqs.get_queue_url(QueueName="observed-events")["QueueUrl"]
    found = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        found += [json.loads(message["Body"]) for message in messages]
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        )
    return found


def pan123_creates(stack: LocalStack, share_name: str) -> int:
    calls = stack.sims["pan123"].requests
    return sum(call.path == PAN123_CREATE and call.body.get("shareName") == share_name for call in calls)


def new_kdocs_file(stack: LocalStack) -> str:
    file_token = f"doc-{uuid.uuid4().hex[:12]}"
    stack.sims["kdocs"].add_file(file_token, f"{file_token}.docx")
    return file_token


def test_valid_requests_of_both_providers_come_back_as_results_and_events(stack):
    name = f"share {uuid.uuid4().hex[:8]}"
    file_token = new_kdocs_file(stack)
    observed_events(stack)  # drop what earlier tests left

    pan123_key = put_request(stack, "123pan", f"{name}.json", {"name": name, "expire_days": 7, "file_ids": [1]})
    kdocs_key = put_request(stack, "kdocs", f"{name}.json", {"file_token": file_token, "permission": "write"})

    pan123_result, kdocs_result = wait_for_result(stack, pan123_key), wait_for_result(stack, kdocs_key)
    assert (pan123_result["status"], pan123_result["share"]["name"]) == ("created", name)
    assert (kdocs_result["status"], kdocs_result["share"]["file_ids"]) == ("created", [file_token])
    assert pan123_result["request"]["key"] == pan123_key
    events = wait_for(lambda: observed_events(stack), "the EventBridge events")
    events += observed_events(stack)
    details = {event["detail"]["request"]["key"]: event for event in events}
    assert details[pan123_key]["detail-type"] == "Share Created"
    assert details[pan123_key]["detail"]["share"] == pan123_result["share"]
    assert details[kdocs_key]["source"] == "sharelink"


def test_an_invalid_body_is_rejected_without_a_provider_call(stack):
    calls_before = len(stack.sims["kdocs"].requests)

    key = put_request(stack, "kdocs", f"bad-{uuid.uuid4().hex[:8]}.json", {"file_token": "../x", "permission": "all"})

    result = wait_for_result(stack, key)
    assert (result["status"], result["error"]["code"]) == ("rejected", "invalid_request")
    assert {detail["field"] for detail in result["error"]["details"]} == {"file_token", "permission"}
    assert "share" not in result
    assert len(stack.sims["kdocs"].requests) == calls_before


def test_a_transient_failure_succeeds_on_redelivery(stack):
    name = f"retry-{uuid.uuid4().hex[:8]}"
    stack.sims["pan123"].faults.add("http500", path=PAN123_CREATE)

    key = put_request(stack, "123pan", f"{name}.json", {"name": name, "expire_days": 1, "file_ids": [2]})

    assert wait_for_result(stack, key)["status"] == "created"
    assert pan123_creates(stack, name) == 2  # the failed call, then the redelivery's


def test_a_failure_that_never_ends_lands_in_the_dead_letter_queue(stack):
    name = f"doomed-{uuid.uuid4().hex[:8]}"
    dead_before = queue_depth(stack, "Pan123RequestsDeadLetterQueue")
    stack.sims["pan123"].faults.add("http500", path=PAN123_CREATE, times=1000)

    key = put_request(stack, "123pan", f"{name}.json", {"name": name, "expire_days": 1, "file_ids": [3]})

    wait_for(lambda: queue_depth(stack, "Pan123RequestsDeadLetterQueue") > dead_before, "the dead-letter queue")
    assert result_of(stack, key) is None
    assert pan123_creates(stack, name) == 5  # the queue's maxReceiveCount
    assert stack.sims["pan123"].shares == {} or all(
        s["shareName"] != name for s in stack.sims["pan123"].shares.values()
    )


def test_the_same_notification_twice_calls_the_provider_once(stack):
    name = f"twice-{uuid.uuid4().hex[:8]}"
    key = put_request(stack, "123pan", f"{name}.json", {"name": name, "expire_days": 7, "file_ids": [4]})
    first = wait_for_result(stack, key)

    send_notification(stack, "Pan123RequestsQueue", key)

    wait_for(lambda: queue_depth(stack, "Pan123RequestsQueue") == 0, "the redelivery to be consumed")
    assert pan123_creates(stack, name) == 1
    assert result_of(stack, key) == first


def test_a_key_with_spaces_and_unicode(stack):
    name = f"季度 报告 {uuid.uuid4().hex[:6]}+&=.json"
    key = put_request(stack, "123pan", f"年度/{name}", {"name": "季度报告", "expire_days": 30, "file_ids": [5]})

    result = wait_for_result(stack, key)

    assert result["status"] == "created"
    assert result["request"]["key"] == key


def test_s3_test_events_are_skipped(stack):
    url = stack.aws.queue_url(stack.template.physical_name("KdocsRequestsQueue"))
    dead_before = queue_depth(stack, "KdocsRequestsDeadLetterQueue")
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": bucket(stack)}

    stack.aws.client("sqs").send_message(QueueUrl=url, MessageBody=json.dumps(test_event))

    wait_for(lambda: queue_depth(stack, "KdocsRequestsQueue") == 0, "the test event to be consumed")
    assert queue_depth(stack, "KdocsRequestsDeadLetterQueue") == dead_before
