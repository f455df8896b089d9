"""A batch of share requests in one wave, against moto and the 123pan simulator: a thread for each record, the request
object read while the idempotency record is written, and the batch's events put together, each record failing alone
when its own event is not taken. Hooks on the handler's real botocore clients watch (and hold or break) its calls."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError

from local.runtime.worker import LambdaContext
from sharelink import aws
from sharelink.idempotency import attempts_from_env, dynamodb, persistence_from_env
from sharelink.providers.pan123 import Pan123
from sharelink.storage_events import ShareRequests
from sharelink.validation import MAX_REPORTED_PROBLEMS
from tests.conftest import load_event
from tests.integration.test_storage_events_handler import (
    PAN123_REQUEST,
    creates,
    drop,
    for_key,
    handle,
    result,
    stored_requests,
)

BATCH = 10
# Bounds every wait of a hook: a wait that runs out fails its test instead of hanging it.
WAIT_S = 10


@contextmanager
def hooked(client: Any, event_name: str, handler: Callable[..., None]) -> Iterator[None]:
    """A botocore event handler on a real client, for the length of the block."""
    client.meta.events.register(event_name, handler)
    try:
        yield
    finally:
        client.meta.events.unregister(event_name, handler)


@contextmanager
def put_calls(share_requests: ShareRequests) -> Iterator[list[list[dict]]]:
    """The entries of each PutEvents call the events function makes in the block."""
    calls: list[list[dict]] = []
    with hooked(
        share_requests.results.events,
        "before-call.events.PutEvents",
        lambda params, **_: calls.append(sent_entries(params)),
    ):
        yield calls


def batch_of(name: str, count: int = BATCH) -> dict:
    record = load_event("pan123_s3_sqs.json")["Records"][0]
    return {"Records": [for_key(record, f"requests/123pan/{name} {i}.json", f"{name}-{i}") for i in range(count)]}


def sent_entries(params: dict) -> list[dict]:
    """The entries of a PutEvents call, as botocore sends them."""
    return json.loads(params["body"])["Entries"]


def request_key(entry: dict) -> str:
    return json.loads(entry["Detail"])["request"]["key"]


def failed(answer: dict) -> set[str]:
    return {failure["itemIdentifier"] for failure in answer["batchItemFailures"]}


@pytest.fixture
def share_requests(pan123_events: Any, pan123_sim: Any, fresh_aws: Any) -> ShareRequests:
    """The 123pan events function's own ShareRequests, made when its module was imported."""
    return pan123_events.share_requests


def test_the_clients_have_a_connection_for_each_record_thread(share_requests):
    clients = [share_requests.s3, share_requests.sqs, share_requests.results.events, share_requests.attempts.dynamodb]

    assert all(client.meta.config.max_pool_connections >= BATCH for client in clients)
    assert share_requests.s3.meta.config.max_pool_connections >= 2 * BATCH  # result writes and request reads


def test_the_records_of_a_batch_of_ten_are_all_in_work_at_once(pan123_events, share_requests, fresh_aws):
    event = batch_of("wave")
    drop(fresh_aws, event, PAN123_REQUEST)
    # Each record thread waits at its result write until all ten are there: two waves would break the barrier.
    all_ten = threading.Barrier(BATCH, timeout=WAIT_S)
    threads = set()

    def meet(**_: Any) -> None:
        threads.add(threading.get_ident())
        all_ten.wait()

    with hooked(share_requests.s3, "before-call.s3.PutObject", meet):
        answer = handle(pan123_events, event)

    assert answer == {"batchItemFailures": []}
    assert len(threads) == BATCH


def test_a_batch_puts_its_events_in_one_call(pan123_events, pan123_sim, share_requests, fresh_aws):
    event = batch_of("one call")
    objects = drop(fresh_aws, event, PAN123_REQUEST)
    with put_calls(share_requests) as calls:
        answer = handle(pan123_events, event)

    assert answer == {"batchItemFailures": []}
    assert len(calls) == 1
    assert sorted(request_key(entry) for entry in calls[0]) == sorted(key for _, key in objects)
    assert all(result(fresh_aws, bucket, key)["status"] == "created" for bucket, key in objects)
    assert len(creates(pan123_sim)) == BATCH


def test_large_outcomes_are_put_in_as_many_calls_as_256_kb_a_call_needs(pan123_events, share_requests, fresh_aws):
    # An unknown field is named twice in its rejection (message and details): ~60 KB of result a request.
    event = batch_of("large")
    objects = drop(fresh_aws, event, PAN123_REQUEST | {"x" * 30_000: 1})
    with put_calls(share_requests) as calls:
        answer = handle(pan123_events, event)

    assert answer == {"batchItemFailures": []}
    assert all(result(fresh_aws, bucket, key)["error"]["code"] == "invalid_request" for bucket, key in objects)
    assert len(calls) >= 3
    assert sorted(request_key(entry) for call in calls for entry in call) == sorted(key for _, key in objects)


def test_a_request_with_thousands_of_unknown_fields_is_rejected_in_a_result_eventbridge_takes(
    pan123_events, share_requests, fresh_aws
):
    # Each named, its rejection would outgrow DynamoDB's 400 KB (the idempotency record) and EventBridge's 256 KB.
    event = batch_of("crowded", 1)
    ((bucket, key),) = drop(fresh_aws, event, PAN123_REQUEST | {f"k{number:04d}": 0 for number in range(5000)})
    with put_calls(share_requests) as calls:
        answer = handle(pan123_events, event)

    assert answer == {"batchItemFailures": []}
    error = result(fresh_aws, bucket, key)["error"]
    assert (error["code"], len(error["details"])) == ("invalid_request", MAX_REPORTED_PROBLEMS)
    assert [request_key(entry) for call in calls for entry in call] == [key]


def test_an_event_eventbridge_refuses_fails_only_its_record(pan123_events, pan123_sim, share_requests, fresh_aws):
    event = batch_of("refused")
    objects = drop(fresh_aws, event, PAN123_REQUEST)
    refused_record, (_, refused_key) = event["Records"][3], objects[3]
    answers: list[dict] = []

    def break_its_detail(params: dict, **_: Any) -> None:
        """EventBridge (moto too) refuses an entry whose Detail is not JSON, and takes the others of the call."""
        params["Entries"] = [
            entry | {"Detail": entry["Detail"][:-1]} if request_key(entry) == refused_key else entry
            for entry in params["Entries"]
        ]

    events = share_requests.results.events
    with (
        hooked(events, "before-parameter-build.events.PutEvents", break_its_detail),
        hooked(events, "after-call.events.PutEvents", lambda parsed, **_: answers.append(parsed)),
    ):
        answer = handle(pan123_events, event)
    redelivered = handle(pan123_events, {"Records": [refused_record]})

    assert [call["FailedEntryCount"] for call in answers] == [1]
    assert failed(answer) == {refused_record["messageId"]}
    assert redelivered == {"batchItemFailures": []}
    assert all(result(fresh_aws, bucket, key)["status"] == "created" for bucket, key in objects)
    assert len(creates(pan123_sim)) == BATCH  # the redelivery replays its outcome


def test_a_failed_call_fails_only_the_records_whose_events_it_carried(pan123_events, share_requests, fresh_aws):
    event = batch_of("two calls")
    # A message naming one more object makes 11 events, one more than a call takes.
    more = json.loads(batch_of("two calls more", 1)["Records"][0]["body"])["Records"]
    event["Records"][0]["body"] = json.dumps({"Records": json.loads(event["Records"][0]["body"])["Records"] + more})
    drop(fresh_aws, event, PAN123_REQUEST)
    owners = {
        key: record["messageId"] for record in event["Records"] for _, key in stored_requests({"Records": [record]})
    }
    calls: list[list[dict]] = []

    def lose_the_short_call(params: dict, **_: Any) -> None:
        entries = sent_entries(params)
        calls.append(entries)
        if len(entries) < BATCH:
            raise EndpointConnectionError(endpoint_url="https://events.us-east-1.amazonaws.com")

    with hooked(share_requests.results.events, "before-call.events.PutEvents", lose_the_short_call):
        answer = handle(pan123_events, event)

    assert sorted(len(entries) for entries in calls) == [1, BATCH]
    (lost,) = [entries for entries in calls if len(entries) < BATCH]
    assert failed(answer) == {owners[request_key(entry)] for entry in lost}


def test_the_request_object_is_read_while_the_idempotency_record_is_written(pan123_events, pan123_sim, fresh_aws):
    session = aws.session()
    pooled = Config(max_pool_connections=2 * BATCH)
    store = persistence_from_env(dynamodb(session))
    share_requests = ShareRequests(
        Pan123.from_env(session),
        store,
        attempts_from_env(dynamodb(session)),
        s3=session.client("s3", config=pooled),
        sqs=session.client("sqs", config=pooled),
        events=session.client("events", config=pooled),
    )
    event = load_event("pan123_s3_sqs.json")
    ((bucket, key),) = drop(fresh_aws, event, PAN123_REQUEST)
    read_started = threading.Event()
    read_before_written: list[bool] = []

    def write_once_reading(**_: Any) -> None:
        read_before_written.append(read_started.wait(WAIT_S))

    with (
        hooked(share_requests.s3, "before-call.s3.GetObject", lambda **_: read_started.set()),
        hooked(store.client, "before-call.dynamodb.PutItem", write_once_reading),
    ):
        answer = share_requests.handle(event, LambdaContext("events-test"))

    assert answer == {"batchItemFailures": []}
    assert read_before_written == [True]
    assert result(fresh_aws, bucket, key)["status"] == "created"


def test_a_replayed_outcome_does_not_wait_for_the_read(pan123_events, pan123_sim, share_requests, fresh_aws):
    event = load_event("pan123_s3_sqs.json")
    ((bucket, key),) = drop(fresh_aws, event, PAN123_REQUEST)
    handle(pan123_events, event)
    first = result(fresh_aws, bucket, key)
    released, read_done = threading.Event(), threading.Event()

    def held(**_: Any) -> None:
        released.wait(WAIT_S)
        read_done.set()

    try:
        with hooked(share_requests.s3, "before-call.s3.GetObject", held):
            answer = handle(pan123_events, event)
            read_done_before_answer = read_done.is_set()
    finally:
        released.set()

    assert answer == {"batchItemFailures": []}
    assert not read_done_before_answer
    assert result(fresh_aws, bucket, key) == first
    assert len(creates(pan123_sim)) == 1
