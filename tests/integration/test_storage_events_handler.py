"""The events handlers, invoked with the real-shaped S3-over-SQS batches of events/, against moto and simulators."""

from __future__ import annotations

import io
import json
import time
from urllib.parse import quote_plus, unquote_plus

import pytest

from local.runtime.worker import LambdaContext
from sharelink import aws
from sharelink.idempotency import attempts_from_env, dynamodb, persistence_from_env
from sharelink.providers.pan123 import Pan123
from sharelink.storage_events import ShareRequests
from tests.conftest import PROVIDER_SETTLE_S, load_event, versioned_bucket

PAN123_REQUEST = {"shareName": "季度报告", "shareExpire": 7, "fileIDList": "14713526,10861131"}
KDOCS_REQUEST = {"file_token": "777", "permission": "read", "period": 7}


def stored_requests(event: dict) -> list[tuple[str, str]]:
    """(bucket, decoded key) of every S3 object an SQS batch names."""
    found = []
    for record in event["Records"]:
        for entry in json.loads(record["body"]).get("Records", []):
            found.append((entry["s3"]["bucket"]["name"], unquote_plus(entry["s3"]["object"]["key"])))
    return found


def for_key(record: dict, key: str, message_id: str) -> dict:
    """The same SQS record, naming another S3 key (URL-encoded, as S3 sends it)."""
    notification = json.loads(record["body"])
    notification["Records"][0]["s3"]["object"]["key"] = quote_plus(key)
    return record | {"messageId": message_id, "body": json.dumps(notification)}


def drop(aws, event: dict, request: dict | bytes) -> list[tuple[str, str]]:
    """Put the request object(s) an event names, as a user would before S3 notifies."""
    s3 = aws.client("s3")
    objects = stored_requests(event)
    for bucket, key in objects:
        if bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
            s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key=key, Body=request if isinstance(request, bytes) else json.dumps(request))
    return objects


def result(aws, bucket: str, key: str) -> dict:
    result_key = "results/" + key.removeprefix("requests/")
    return json.loads(aws.client("s3").get_object(Bucket=bucket, Key=result_key)["Body"].read())


def handle(module, event: dict) -> dict:
    return module.lambda_handler(event, LambdaContext("events-test"))


def creates(sim) -> list:
    return [call for call in sim.requests if call.method == "POST"]


def test_a_stored_request_becomes_a_share_and_a_result(pan123_events, pan123_sim, fresh_aws):
    event = load_event("pan123_s3_sqs.json")
    ((bucket, key),) = drop(fresh_aws, event, PAN123_REQUEST)

    answer = handle(pan123_events, event)

    assert answer == {"batchItemFailures": []}
    assert key == "requests/123pan/季度报告 2026.json"  # the notification's key, URL-decoded
    written = result(fresh_aws, bucket, key)
    assert written["status"] == "created"
    assert written["request"] == {"bucket": bucket, "key": key, "etag": "6b1c3f5e8a2d4e7f9a0b1c2d3e4f5a6b"}
    assert written["share"]["name"] == "季度报告"
    assert written["share"]["share_id"] in {str(share_id) for share_id in pan123_sim.shares}
    assert written["processed_at"].endswith("Z")


def test_the_same_message_twice_creates_one_share_and_rewrites_the_same_result(pan123_events, pan123_sim, fresh_aws):
    event = load_event("pan123_s3_sqs.json")
    ((bucket, key),) = drop(fresh_aws, event, PAN123_REQUEST)

    handle(pan123_events, event)
    first = result(fresh_aws, bucket, key)
    handle(pan123_events, event)

    assert len(creates(pan123_sim)) == 1
    assert result(fresh_aws, bucket, key) == first


def test_a_transient_failure_is_a_batch_item_failure_then_succeeds(pan123_events, pan123_sim, fresh_aws, monkeypatch):
    event = load_event("pan123_s3_sqs.json")
    ((bucket, key),) = drop(fresh_aws, event, PAN123_REQUEST)
    pan123_sim.faults.add("http500", path="/api/v1/share/create")
    lines = io.StringIO()
    monkeypatch.setattr(pan123_events.logger.registered_handler, "stream", lines)

    failed = handle(pan123_events, event)
    logged = [json.loads(line) for line in lines.getvalue().splitlines() if line.startswith('{"level"')]
    with pytest.raises(fresh_aws.client("s3").exceptions.NoSuchKey):
        result(fresh_aws, bucket, key)
    too_soon = handle(pan123_events, event)  # a 5xx may hide a share: the provider is given time to settle
    time.sleep(float(PROVIDER_SETTLE_S))
    retried = handle(pan123_events, event)

    assert failed == too_soon == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    retrying = [line for line in logged if line["message"] == "share request will be retried"]
    assert [(line["code"], line["request_key"]) for line in retrying] == [("provider_error", key)]
    assert retried == {"batchItemFailures": []}
    assert result(fresh_aws, bucket, key)["status"] == "created"
    assert len(creates(pan123_sim)) == 2


@pytest.mark.parametrize(
    ("body", "code"),
    [(b"{not json", "malformed_json"), (json.dumps({"shareName": "x"}).encode(), "invalid_request")],
)
def test_an_invalid_request_is_rejected_for_good_without_a_provider_call(
    pan123_events, pan123_sim, fresh_aws, body, code
):
    event = load_event("pan123_s3_sqs.json")
    ((bucket, key),) = drop(fresh_aws, event, body)

    answer = handle(pan123_events, event)

    assert answer == {"batchItemFailures": []}
    written = result(fresh_aws, bucket, key)
    assert (written["status"], written["error"]["code"]) == ("rejected", code)
    assert pan123_sim.requests == []


def test_an_unknown_file_is_rejected_with_the_providers_code(pan123_events, pan123_sim, fresh_aws):
    event = load_event("pan123_s3_sqs.json")
    ((bucket, key),) = drop(fresh_aws, event, PAN123_REQUEST | {"fileIDList": "999999999"})

    handle(pan123_events, event)

    error = result(fresh_aws, bucket, key)["error"]
    assert (error["code"], error["provider_code"]) == ("provider_not_found", 5066)


def test_s3_test_events_and_other_keys_are_skipped(pan123_events, pan123_sim, fresh_aws):
    record = load_event("pan123_s3_sqs.json")["Records"][0]
    keys = ["results/123pan/a.json", "requests/kdocs/a.json", "requests/123pan/a.txt", "requests/123pan.json"]
    other_keys = [for_key(record, key, f"m{i}") for i, key in enumerate(keys)]
    skipped = {"Records": load_event("s3_test_event_sqs.json")["Records"] + other_keys}

    answer = handle(pan123_events, skipped)

    assert answer == {"batchItemFailures": []}
    assert pan123_sim.requests == []


def test_the_same_object_twice_in_one_batch_is_created_once(pan123_events, pan123_sim, fresh_aws):
    record = load_event("pan123_s3_sqs.json")["Records"][0]
    event = {"Records": [record, record | {"messageId": "the-duplicate"}]}
    drop(fresh_aws, event, PAN123_REQUEST)
    pan123_sim.latency_s = 0.2

    first = handle(pan123_events, event)
    redelivered = handle(
        pan123_events, {"Records": [event["Records"][i] for i in range(2) if first["batchItemFailures"]]}
    )

    # one delivery creates; the other finds it in progress and is retried, then finds it done
    assert len(first["batchItemFailures"]) == 1
    assert redelivered == {"batchItemFailures": []}
    assert len(creates(pan123_sim)) == 1


def test_kdocs_stored_request_becomes_a_link(kdocs_events, kdocs_sim, fresh_aws):
    event = load_event("kdocs_s3_sqs.json")
    ((bucket, key),) = drop(fresh_aws, event, KDOCS_REQUEST)

    answer = handle(kdocs_events, event)

    assert answer == {"batchItemFailures": []}
    share = result(fresh_aws, bucket, key)["share"]
    assert (share["provider"], share["file_ids"], share["url"]) == (
        "kdocs",
        ["777"],
        kdocs_sim.links["777"]["link_url"],
    )


def test_records_of_a_batch_reach_the_provider_concurrently(pan123_events, pan123_sim, fresh_aws):
    record = load_event("pan123_s3_sqs.json")["Records"][0]
    event = {"Records": [for_key(record, f"requests/123pan/report {i}.json", f"m{i}") for i in range(10)]}
    drop(fresh_aws, event, PAN123_REQUEST)
    pan123_sim.latency_s = 0.2

    answer = handle(pan123_events, event)

    assert answer == {"batchItemFailures": []}
    assert len(creates(pan123_sim)) == 10
    assert pan123_sim.max_in_flight > 1


def test_the_concurrency_of_a_batch_is_bounded(pan123_events, pan123_sim, fresh_aws):
    session = aws.session()
    bounded = ShareRequests(
        Pan123.from_env(session),
        persistence_from_env(dynamodb(session)),
        attempts_from_env(dynamodb(session)),
        s3=session.client("s3"),
        sqs=session.client("sqs"),
        events=session.client("events"),
        concurrency=3,
    )
    record = load_event("pan123_s3_sqs.json")["Records"][0]
    event = {"Records": [for_key(record, f"requests/123pan/bounded {i}.json", f"b{i}") for i in range(10)]}
    drop(fresh_aws, event, PAN123_REQUEST)
    pan123_sim.latency_s = 0.1

    answer = bounded.handle(event, LambdaContext("events-test"))

    assert answer == {"batchItemFailures": []}
    assert 1 < pan123_sim.max_in_flight <= 3


def notified_version(record: dict, stored: dict, sequencer: str, message_id: str) -> dict:
    """The same SQS record, telling of one version of its object (versioned bucket: versionId and sequencer)."""
    notification = json.loads(record["body"])
    notification["Records"][0]["s3"]["object"] |= {
        "eTag": stored["ETag"].strip('"'),
        "versionId": stored["VersionId"],
        "sequencer": sequencer,
    }
    return record | {"messageId": message_id, "body": json.dumps(notification)}


def test_a_late_delivery_of_an_overwritten_request_leaves_the_newer_result(pan123_events, pan123_sim, fresh_aws):
    """S3 notifies in no set order, and a redelivery comes when it comes: the older version's outcome, arriving after
    the newer one's, must not replace it at the result key (the sequencer tells which PUT came later)."""
    record = load_event("pan123_s3_sqs.json")["Records"][0]
    ((bucket, key),) = stored_requests({"Records": [record]})
    s3 = versioned_bucket(fresh_aws, bucket)
    older = s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(PAN123_REQUEST | {"shareName": "旧版"}))
    newer = s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(PAN123_REQUEST | {"shareName": "新版"}))

    handle(pan123_events, {"Records": [notified_version(record, newer, "0055AED6DCD90281F0", "newer")]})
    late = handle(pan123_events, {"Records": [notified_version(record, older, "0055AED6DCD90281E5", "older")]})

    assert late == {"batchItemFailures": []}
    written = result(fresh_aws, bucket, key)
    assert (written["request"]["etag"], written["share"]["name"]) == (newer["ETag"].strip('"'), "新版")
    assert len(creates(pan123_sim)) == 2  # each version is a request of its own
