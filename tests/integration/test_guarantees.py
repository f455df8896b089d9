"""DESIGN.md "Limits and guarantees", each against the real handlers, moto and the simulators over HTTP:
at most one share per request after timeouts, answers within the deadline, a rejected token renewed on demand,
a used-up daily quota waited out, and storage requests that can never be read rejected rather than retried."""

from __future__ import annotations

import json
import time as clock
from datetime import datetime, time, timedelta, timezone

import pytest

from local.runtime.event_sources import sqs_record
from local.runtime.worker import LambdaContext
from sharelink.renewal import fingerprint
from tests.conftest import (
    FUNCTION_ENV,
    KDOCS_SECRET,
    PAN123_REQUESTS_QUEUE,
    PROVIDER_SETTLE_S,
    PROVIDER_TIMEOUT_S,
    invoke,
    load_event,
)
from tests.integration.test_storage_events_handler import drop, handle, result

PAN123_BODY = {"shareName": "超时报告", "shareExpire": 7, "fileIDList": "1,2"}
SLOW = {"delay": float(PROVIDER_TIMEOUT_S) + 1.5}


class ContextWith(LambdaContext):
    """A Lambda context with `remaining_ms` left at the start of the invocation."""

    def __init__(self, remaining_ms: int) -> None:
        super().__init__("guarantees-test")
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def post(module, event_name: str, body: dict, key: str | None = None) -> tuple[int, dict, dict]:
    event = load_event(event_name, body=body)
    if key:
        event["headers"]["idempotency-key"] = key
    return invoke(module, event)


def settle() -> None:
    """Wait out the time a provider is given to finish a create whose caller gave up (PROVIDER_SETTLE_S)."""
    clock.sleep(float(PROVIDER_SETTLE_S))


def share_creates(sim) -> int:
    return sum(call.method == "POST" and call.path.endswith("/share/create") for call in sim.requests)


@pytest.mark.parametrize("expire_days", [7, 0])
def test_a_123pan_create_that_timed_out_is_found_not_made_again(pan123_api, pan123_sim, expire_days):
    """The first create times out after the simulator made the share; the retry with the same key finds it."""
    body = PAN123_BODY | {"shareExpire": expire_days}
    pan123_sim.faults.add("timeout", path="/api/v1/share/create", **SLOW)

    first = post(pan123_api, "pan123_create.json", body, "slow-1")
    too_soon = post(pan123_api, "pan123_create.json", body, "slow-1")
    settle()
    retried = post(pan123_api, "pan123_create.json", body, "slow-1")

    assert (first[0], first[2]["error"]["code"]) == (504, "provider_timeout")
    assert (too_soon[0], too_soon[2]["error"]["code"]) == (409, "idempotency_conflict")
    assert retried[0] == 201
    assert len(pan123_sim.shares) == 1
    assert retried[2]["share_id"] == str(next(iter(pan123_sim.shares)))
    assert retried[2]["file_ids"] == ["1", "2"]
    assert share_creates(pan123_sim) == 1


def test_a_rate_limited_share_list_is_asked_again_not_failed(pan123_api, pan123_sim):
    """Reconciling reads the share list (10 QPS per client): a rate-limited page is asked again after Retry-After."""
    pan123_sim.faults.add("timeout", path="/api/v1/share/create", **SLOW)
    post(pan123_api, "pan123_create.json", PAN123_BODY, "limited-1")
    settle()
    pan123_sim.faults.add("http429", path="/api/v1/share/list", times=2, retry_after=1)

    status, _, answer = post(pan123_api, "pan123_create.json", PAN123_BODY, "limited-1")

    assert status == 201
    assert answer["share_id"] == str(next(iter(pan123_sim.shares)))
    assert sum(call.path == "/api/v1/share/list" for call in pan123_sim.requests) == 3
    assert share_creates(pan123_sim) == 1


def test_a_timed_out_123pan_create_that_made_nothing_is_sent_once_more(pan123_api, pan123_sim):
    pan123_sim.faults.add("http500", path="/api/v1/share/create")

    first = post(pan123_api, "pan123_create.json", PAN123_BODY, "failed-1")
    settle()
    retried = post(pan123_api, "pan123_create.json", PAN123_BODY, "failed-1")

    assert (first[0], retried[0]) == (502, 201)
    assert len(pan123_sim.shares) == 1


def test_two_shares_that_could_be_the_lost_one_stop_the_retry(pan123_api, pan123_sim):
    """A twin made elsewhere meanwhile (same name, settings and time) cannot be told apart: nothing is created."""
    pan123_sim.faults.add("timeout", path="/api/v1/share/create", **SLOW)
    post(pan123_api, "pan123_create.json", PAN123_BODY, "twin-1")
    post(pan123_api, "pan123_create.json", PAN123_BODY)  # the same share made again without a key
    settle()

    status, _, answer = post(pan123_api, "pan123_create.json", PAN123_BODY, "twin-1")

    assert (status, answer["error"]["code"]) == (409, "outcome_unknown")
    assert len(pan123_sim.shares) == 2


def test_an_older_identical_share_is_not_taken_for_the_lost_one(pan123_api, pan123_sim):
    """A share this deployment made before the attempt is older than it: the retry creates."""
    post(pan123_api, "pan123_create.json", PAN123_BODY, "before-1")
    pan123_sim.faults.add("http500", path="/api/v1/share/create")
    post(pan123_api, "pan123_create.json", PAN123_BODY, "after-1")
    settle()

    status, _, answer = post(pan123_api, "pan123_create.json", PAN123_BODY, "after-1")

    assert status == 201
    assert len(pan123_sim.shares) == 2
    assert answer["share_id"] == str(max(pan123_sim.shares))


def test_a_kdocs_reset_that_timed_out_is_not_reset_again(kdocs_api, kdocs_sim):
    body = {"file_token": "doc-1", "permission": "write", "reset": True}
    post(kdocs_api, "kdocs_create.json", {"file_token": "doc-1", "permission": "read"})
    original = kdocs_sim.links["doc-1"]["sid"]
    kdocs_sim.faults.add("timeout", method="POST", **SLOW)

    first = post(kdocs_api, "kdocs_create.json", body, "reset-1")
    settle()
    made = kdocs_sim.links["doc-1"]["sid"]
    retried = post(kdocs_api, "kdocs_create.json", body, "reset-1")

    assert first[0] == 504
    assert made != original
    assert (retried[0], retried[2]["share_id"]) == (200, made)
    assert kdocs_sim.links["doc-1"]["sid"] == made


def test_retries_stop_before_the_deadline(pan123_api, pan123_sim):
    """With 2.5 s left (1 s kept to answer) and 1 s per call, a list that times out is not tried a second time."""
    pan123_sim.faults.add("timeout", path="/api/v1/share/list", times=3, **SLOW)
    event = load_event("pan123_list.json")

    answer = pan123_api.lambda_handler(event, ContextWith(remaining_ms=2500))

    assert answer["statusCode"] == 504
    assert sum(call.path.endswith("/share/list") for call in pan123_sim.requests) == 1


def test_no_call_is_sent_without_time_for_it(pan123_api, pan123_sim):
    answer = pan123_api.lambda_handler(load_event("pan123_list.json"), ContextWith(remaining_ms=1200))

    assert answer["statusCode"] == 504
    assert not [call for call in pan123_sim.requests if call.path.endswith("/share/list")]


def test_a_create_never_sent_for_want_of_time_is_sent_at_once_by_its_retry(pan123_api, pan123_sim):
    """No time was left to send the create: it made nothing, so the retry with its key need not wait for it to
    settle (README: a create that never connected has its record dropped)."""
    event = load_event("pan123_create.json", body=PAN123_BODY)
    event["headers"]["idempotency-key"] = "no-time-1"
    unsent = pan123_api.lambda_handler(event, ContextWith(remaining_ms=1200))

    status, _, answer = post(pan123_api, "pan123_create.json", PAN123_BODY, "no-time-1")

    assert unsent["statusCode"] == 504
    assert status == 201, f"answered {status}: {answer}"
    assert share_creates(pan123_sim) == 1


def test_a_revoked_token_is_renewed_on_demand(kdocs_api, kdocs_sim, fresh_aws, tokens_function, capsys):
    stored = json.loads(fresh_aws.client("secretsmanager").get_secret_value(SecretId=KDOCS_SECRET)["SecretString"])
    kdocs_sim.revoke(stored["access_token"])

    refused = post(kdocs_api, "kdocs_create.json", {"file_token": "777", "permission": "read"})
    asked = fresh_aws.client("sqs").receive_message(QueueUrl=FUNCTION_ENV["TOKEN_RENEWAL_QUEUE_URL"])["Messages"]
    tokens_function.lambda_handler({"Records": [{"body": message["Body"]} for message in asked]}, LambdaContext("t"))
    again = post(kdocs_api, "kdocs_create.json", {"file_token": "777", "permission": "read"})

    assert (refused[0], refused[2]["error"]["code"]) == (502, "provider_auth_failed")
    assert [json.loads(message["Body"]) for message in asked] == [
        {"provider": "kdocs", "rejected": fingerprint(stored["access_token"])}
    ]
    assert again[0] == 200
    assert '"ProviderAuthFailed":[1.0]' in capsys.readouterr().out


def test_a_renewal_asked_for_twice_renews_once(kdocs_sim, fresh_aws, tokens_function):
    stored = json.loads(fresh_aws.client("secretsmanager").get_secret_value(SecretId=KDOCS_SECRET)["SecretString"])
    request = {"body": json.dumps({"provider": "kdocs", "rejected": fingerprint(stored["access_token"])})}

    tokens_function.lambda_handler({"Records": [request]}, LambdaContext("t"))
    renewed = json.loads(fresh_aws.client("secretsmanager").get_secret_value(SecretId=KDOCS_SECRET)["SecretString"])
    tokens_function.lambda_handler({"Records": [request]}, LambdaContext("t"))
    after = json.loads(fresh_aws.client("secretsmanager").get_secret_value(SecretId=KDOCS_SECRET)["SecretString"])

    assert renewed["access_token"] != stored["access_token"]
    assert after == renewed


def test_a_used_up_daily_quota_says_when_it_resets(kdocs_api, kdocs_sim, monkeypatch):
    monkeypatch.setattr(kdocs_sim, "daily_quota", 0)

    status, headers, answer = post(kdocs_api, "kdocs_create.json", {"file_token": "777", "permission": "read"})

    shanghai = datetime.now(timezone(timedelta(hours=8)))
    midnight = datetime.combine(shanghai.date() + timedelta(days=1), time(), shanghai.tzinfo)
    assert (status, answer["error"]["code"]) == (429, "provider_rate_limited")
    assert abs(int(headers["Retry-After"]) - (midnight - shanghai).total_seconds()) < 60


# 7 s; and a day, as a used-up KDocs quota may ask: past SQS's 12 hours from the receive, SQS would refuse the change.
@pytest.mark.parametrize("retry_after", [7, 24 * 3600])
def test_a_rate_limited_storage_request_comes_back_after_retry_after(pan123_events, pan123_sim, fresh_aws, retry_after):
    queue_url = fresh_aws.client("sqs").create_queue(QueueName=PAN123_REQUESTS_QUEUE)["QueueUrl"]
    fresh_aws.client("sqs").send_message(QueueUrl=queue_url, MessageBody="{}")
    message = fresh_aws.client("sqs").receive_message(QueueUrl=queue_url, VisibilityTimeout=1)["Messages"][0]
    event = load_event("pan123_s3_sqs.json")
    event["Records"][0] |= {
        "receiptHandle": message["ReceiptHandle"],
        "eventSourceARN": f"arn:aws:sqs:us-east-1:123456789012:{PAN123_REQUESTS_QUEUE}",
    }
    drop(fresh_aws, event, {"shareName": "限流", "shareExpire": 1, "fileIDList": "1"})
    pan123_sim.faults.add("http429", path="/api/v1/share/create", retry_after=retry_after)

    answer = handle(pan123_events, event)
    visible = fresh_aws.client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]

    assert answer == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    # Without the change the message would be visible again after the 1 s it was received with.
    assert fresh_aws.client("sqs").receive_message(QueueUrl=queue_url, WaitTimeSeconds=2).get("Messages") is None
    assert visible["ApproximateNumberOfMessagesNotVisible"] == "1"


def test_a_rate_limit_without_retry_after_does_not_spend_the_receives_in_seconds(pan123_events, pan123_sim, fresh_aws):
    """123pan refuses with code 429 in its envelope and no Retry-After header (1 s assumed): the message must not come
    back every second and reach the dead-letter queue after its 5 receives within seconds, as the 5xx it replaced
    would not (they wait for the queue's visibility timeout)."""
    sqs = fresh_aws.client("sqs")
    dead_letters = sqs.create_queue(QueueName=f"{PAN123_REQUESTS_QUEUE}-dlq")["QueueUrl"]
    dead_letters_arn = sqs.get_queue_attributes(QueueUrl=dead_letters, AttributeNames=["QueueArn"])["Attributes"]
    redrive = json.dumps({"deadLetterTargetArn": dead_letters_arn["QueueArn"], "maxReceiveCount": 5})
    queue_url = sqs.create_queue(
        QueueName=PAN123_REQUESTS_QUEUE, Attributes={"VisibilityTimeout": "60", "RedrivePolicy": redrive}
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sample = load_event("pan123_s3_sqs.json")["Records"][0]
    drop(fresh_aws, {"Records": [sample]}, {"shareName": "限流", "shareExpire": 1, "fileIDList": "1"})
    sqs.send_message(QueueUrl=queue_url, MessageBody=sample["body"])
    pan123_sim.faults.add("code", path="/api/v1/share/create", code=429, message="请求太频繁", times=6)

    receives = 0
    for _ in range(6):  # the event source mapping's polls, as long as the message keeps coming back
        messages = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=3, AttributeNames=["All"]).get("Messages")
        if not messages:
            break
        receives += 1
        handle(pan123_events, {"Records": [sqs_record(messages[0], queue_arn)]})

    assert receives == 1
    assert sqs.receive_message(QueueUrl=dead_letters).get("Messages") is None


@pytest.mark.parametrize(
    ("stored", "code"),
    [
        (b"{" + b'"shareName": "' + b"x" * (70 * 1024) + b'"}', "request_too_large"),
        (b"[" * 5000 + b"]" * 5000, "malformed_json"),
        (b'{"shareName": "\\ud800", "shareExpire": 1, "fileIDList": "1"}', "invalid_request"),
    ],
)
def test_storage_requests_that_can_never_succeed_are_rejected(pan123_events, pan123_sim, fresh_aws, stored, code):
    event = load_event("pan123_s3_sqs.json")
    ((bucket, key),) = drop(fresh_aws, event, stored)

    answer = handle(pan123_events, event)

    assert answer == {"batchItemFailures": []}
    assert (result(fresh_aws, bucket, key)["status"], result(fresh_aws, bucket, key)["error"]["code"]) == (
        "rejected",
        code,
    )
    assert share_creates(pan123_sim) == 0


def test_a_request_version_deleted_for_good_is_rejected(pan123_events, pan123_sim, fresh_aws):
    event = load_event("pan123_s3_sqs.json")
    ((bucket, key),) = drop(fresh_aws, event, {"shareName": "旧", "shareExpire": 1, "fileIDList": "1"})
    s3 = fresh_aws.client("s3")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    version = s3.put_object(Bucket=bucket, Key=key, Body=b"{}")["VersionId"]
    s3.delete_object(Bucket=bucket, Key=key, VersionId=version)
    notification = json.loads(event["Records"][0]["body"])
    notification["Records"][0]["s3"]["object"]["versionId"] = version
    event["Records"][0]["body"] = json.dumps(notification)

    answer = handle(pan123_events, event)

    assert answer == {"batchItemFailures": []}
    written = result(fresh_aws, bucket, key)
    assert (written["status"], written["error"]["code"]) == ("rejected", "request_not_found")


def test_a_huge_file_name_from_the_provider_still_fits_the_remembered_answer(kdocs_api, kdocs_sim):
    """A 400 KB file name would make the remembered answer exceed DynamoDB's 400 KB item: it is shortened."""
    kdocs_sim.add_file("huge-name", "名" * 200_000 + ".docx")
    body = {"file_token": "huge-name", "permission": "read"}

    first = post(kdocs_api, "kdocs_create.json", body, "huge-1")
    again = post(kdocs_api, "kdocs_create.json", body, "huge-1")

    assert (first[0], again[0]) == (200, 200)
    assert len(first[2]["name"]) == 1024 and first[2]["name"].endswith("…")
    assert again[2] == first[2]
    assert sum(call.method == "POST" for call in kdocs_sim.requests) == 1
