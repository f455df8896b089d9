"""The Idempotency-Key header of the POST routes, on DynamoDB (moto), for both providers."""

from __future__ import annotations

import time

import pytest

from tests.conftest import PROVIDER_SETTLE_S, invoke, load_event

PAN123_BODY = {"shareName": "报告", "shareExpire": 7, "fileIDList": "1,2"}
KDOCS_BODY = {"file_token": "doc-1", "permission": "read", "reset": True}
# provider: (sample event, body, another body, success status)
CASES = {
    "123pan": ("pan123_create.json", PAN123_BODY, PAN123_BODY | {"shareExpire": 30}, 201),
    "kdocs": ("kdocs_create.json", KDOCS_BODY, KDOCS_BODY | {"permission": "write"}, 200),
}


@pytest.fixture(params=sorted(CASES))
def provider(request, pan123_api, kdocs_api, pan123_sim, kdocs_sim):
    """(handler module, simulator, sample event, body, another body, success status) for each provider."""
    module, sim = (pan123_api, pan123_sim) if request.param == "123pan" else (kdocs_api, kdocs_sim)
    return module, sim, *CASES[request.param]


def post(module, event_name: str, body: dict, key: str | None) -> tuple[int, dict, dict]:
    event = load_event(event_name, body=body)
    if key is not None:
        event["headers"]["idempotency-key"] = key
    return invoke(module, event)


def creates(sim) -> int:
    return sum(call.method == "POST" for call in sim.requests)


def test_a_retry_with_the_same_key_and_body_answers_the_first_answer(provider):
    module, sim, event_name, body, _, status = provider

    first = post(module, event_name, body, "key-1")
    again = post(module, event_name, body, "key-1")

    assert first[0] == again[0] == status
    assert again[2] == first[2]
    assert creates(sim) == 1


def test_the_same_key_with_another_body_is_a_conflict(provider):
    module, sim, event_name, body, other_body, _ = provider
    post(module, event_name, body, "key-2")

    status, _, answer = post(module, event_name, other_body, "key-2")

    assert (status, answer["error"]["code"]) == (409, "idempotency_conflict")
    assert creates(sim) == 1


def test_without_a_key_every_post_creates(provider):
    module, sim, event_name, body, _, status = provider

    answers = [post(module, event_name, body, None)[0] for _ in range(2)]

    assert answers == [status, status]
    assert creates(sim) == 2


def test_a_failed_call_is_not_remembered(provider):
    """A 5xx may hide a share the provider made: the retry waits for the provider to settle, then reconciles."""
    module, sim, event_name, body, _, status = provider
    sim.faults.add("http500", method="POST")

    failed = post(module, event_name, body, "key-3")
    too_soon = post(module, event_name, body, "key-3")
    time.sleep(float(PROVIDER_SETTLE_S))
    retried = post(module, event_name, body, "key-3")

    assert (failed[0], too_soon[0], retried[0]) == (502, 409, status)
    assert int(too_soon[1]["Retry-After"]) <= float(PROVIDER_SETTLE_S)


def test_a_refused_create_is_retried_at_once(pan123_api, pan123_sim):
    """A refusal in the provider's envelope proves nothing was made: no waiting, no reconciling."""
    pan123_sim.faults.add("code", code=5066, message="文件不存在")

    refused = post(pan123_api, "pan123_create.json", PAN123_BODY, "key-5")
    retried = post(pan123_api, "pan123_create.json", PAN123_BODY, "key-5")

    assert (refused[0], retried[0]) == (404, 201)
    assert not [call for call in pan123_sim.requests if call.path.endswith("/share/list")]


def test_the_same_body_in_the_providers_field_names_is_the_same_request(pan123_api, pan123_sim):
    snake = {"name": "报告", "expire_days": 7, "file_ids": [1, 2]}
    provider_names = {"shareName": "报告", "shareExpire": 7, "fileIDList": "1,2"}

    first = post(pan123_api, "pan123_create.json", snake, "key-4")
    again = post(pan123_api, "pan123_create.json", provider_names, "key-4")

    assert again[2] == first[2]
    assert creates(pan123_sim) == 1


def test_the_same_key_with_another_body_after_an_unknown_outcome_is_a_conflict(pan123_api, pan123_sim):
    """The first create made its share but its answer was lost (Powertools forgets the failed call); the key sent
    again with other files must not be answered that share, whose files are not the ones it names."""
    pan123_sim.faults.add("close_after", path="/api/v1/share/create")
    lost = post(pan123_api, "pan123_create.json", PAN123_BODY, "key-6")

    status, _, answer = post(pan123_api, "pan123_create.json", PAN123_BODY | {"fileIDList": "3,4"}, "key-6")

    assert (lost[0], lost[2]["error"]["code"]) == (504, "provider_timeout")
    assert status == 409, f"answered {status}: {answer}"
    assert answer["error"]["code"] == "idempotency_conflict"
    assert creates(pan123_sim) == 1
