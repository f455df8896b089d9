"""Soaks through the whole local stack, with faults injected at the providers: at most one share per request.

Storage path: 300 request objects per provider; among the creates, timeouts (the provider makes the share after
the caller gave up), connections dropped after the provider acted, 5xx and rate limits; some notifications
delivered twice and some requests invalid. Every object ends with exactly one result, the providers hold exactly
one share per distinct valid request, and no queue or dead-letter queue keeps a message.
HTTP: requests with an Idempotency-Key retried by the client after 504s and 409s until answered: one share each.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from local.stack import LocalStack
from tests.conftest import observe_results
from tests.e2e.test_storage_events import put_request, queue_depth, result_of, send_notification
from tests.leaks import observe
from tests.signing import SigV4

REQUESTS_PER_PROVIDER = 300
HTTP_REQUESTS = 60
SOAK_WAIT_S = 240
PAN123_CREATE = "/api/v1/share/create"
KDOCS_LINKS = "/api/v1/openapi/personal/files/soak-{i}/links"
SLOW = {"delay": 2.5}  # beyond the stack's 1 s provider timeout
SETTLE_S = 8
# Longer than settling, as the template's 360 s are against 60 s: a request that failed comes back settled, instead of
# spending a receive on "retry in 1 s" at the boundary.
VISIBILITY_S = SETTLE_S + 4


@pytest.fixture(scope="module")
def soak_stack() -> Iterator[LocalStack]:
    # Settling must outlast the slowest fault (a 2.5 s timeout that still makes its share) on a loaded machine. A failed
    # message comes back later than that, as in the template (360 s against 60 s): redelivered faster, a request
    # whose create is settling spends its receives on "in progress" and "settling" answers, and after five SQS sends
    # it to the dead-letter queue although it gets its share.
    # The functions those queues drive time out no later (Lambda refuses a queue whose visibility is shorter).
    parameters = {"ProviderTimeoutSeconds": "1", "ProviderSettleSeconds": str(SETTLE_S)}
    with LocalStack(
        sim_lifetime_s=900,
        parameters=parameters,
        queue_visibility_timeout_s=VISIBILITY_S,
        queue_function_timeout_s=SETTLE_S,
    ) as running:
        running.gateway.observers.append(observe)
        running.sims["kdocs"].daily_quota = 1_000_000
        yield running
        observe_results(running.aws)


def dead_letters(stack: LocalStack, queue_id: str) -> list[str]:
    """The keys of the requests whose messages a dead-letter queue holds (none, when every request got through)."""
    if not queue_depth(stack, queue_id):
        return []
    url = stack.aws.queue_url(stack.template.physical_name(queue_id))
    messages = stack.aws.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [record["s3"]["object"]["key"] for message in messages for record in json.loads(message["Body"])["Records"]]


def fault_for(i: int) -> dict | None:
    """Every fifth request meets a fault on its create (one fault each: five in a row are for the dead-letter queue)."""
    return (
        {
            0: {"kind": "timeout", **SLOW},
            1: {"kind": "close_after"},
            2: {"kind": "http500"},
            3: {"kind": "http429"},
        }.get(i // 5 % 6)
        if i % 5 == 0
        else None
    )


def report(soak: str, outcomes: Counter, **figures: int) -> None:
    """The figures of a soak, printed for the record (`pytest -s`)."""
    print(json.dumps({"soak": soak, "outcomes": {str(key): count for key, count in outcomes.items()}, **figures}))


def creates(sim, path_end: str) -> int:
    return sum(call.method == "POST" and call.path.endswith(path_end) for call in sim.requests)


def wait_until(probe, what: str) -> None:
    deadline = time.monotonic() + SOAK_WAIT_S
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(0.5)
    raise AssertionError(f"gave up waiting for {what}")


def drain(stack: LocalStack, queue_id: str, keys: list[str]) -> dict[str, dict]:
    wait_until(lambda: all(result_of(stack, key) for key in keys), f"a result for each of {len(keys)} requests")
    wait_until(lambda: queue_depth(stack, queue_id) == 0, f"{queue_id} to drain")
    return {key: result_of(stack, key) or {} for key in keys}


def test_pan123_storage_soak(soak_stack):
    sim = soak_stack.sims["pan123"]
    keys, valid = [], set()
    for i in range(REQUESTS_PER_PROVIDER):
        name = f"soak-{i:03d}"
        if fault := fault_for(i):
            sim.faults.add(fault.pop("kind"), method="POST", path=PAN123_CREATE, body={"shareName": name}, **fault)
        body = {"name": " " if i % 10 == 9 else name, "expire_days": 7, "file_ids": [i + 1]}
        valid |= set() if i % 10 == 9 else {name}
        keys.append(put_request(soak_stack, "123pan", f"{name}.json", body))
        if i % 10 == 7:
            send_notification(soak_stack, "Pan123RequestsQueue", keys[-1])

    results = drain(soak_stack, "Pan123RequestsQueue", keys)

    statuses = Counter(result["status"] for result in results.values())
    shares = Counter(share["shareName"] for share in sim.shares.values())
    report("123pan storage", statuses, shares=sum(shares.values()), creates=creates(sim, PAN123_CREATE))
    assert len(sim.faults) == 0, "a planned fault never met its request"
    assert statuses == {"created": len(valid), "rejected": REQUESTS_PER_PROVIDER - len(valid)}
    assert shares == dict.fromkeys(valid, 1)
    assert dead_letters(soak_stack, "Pan123RequestsDeadLetterQueue") == []


def test_kdocs_storage_soak(soak_stack):
    sim = soak_stack.sims["kdocs"]
    keys, valid = [], 0
    for i in range(REQUESTS_PER_PROVIDER):
        sim.add_file(f"soak-{i}", f"soak {i}.docx")
        if fault := fault_for(i):
            sim.faults.add(fault.pop("kind"), method="POST", path=KDOCS_LINKS.format(i=i), **fault)
        permission = "none" if i % 10 == 9 else "read"
        valid += permission == "read"
        body = {"file_token": f"soak-{i}", "permission": permission, "reset": True}
        keys.append(put_request(soak_stack, "kdocs", f"soak-{i}.json", body))
        if i % 10 == 7:
            send_notification(soak_stack, "KdocsRequestsQueue", keys[-1])

    results = drain(soak_stack, "KdocsRequestsQueue", keys)

    statuses = Counter(result["status"] for result in results.values())
    soak_links = [token for token in sim.links if token.startswith("soak-")]
    report("kdocs storage", statuses, shares=len(soak_links) + len(sim.retired_sids), creates=creates(sim, "/links"))
    assert len(sim.faults) == 0, "a planned fault never met its request"
    assert statuses == {"created": valid, "rejected": REQUESTS_PER_PROVIDER - valid}
    assert len(soak_links) == valid
    assert not [sid for sid in sim.retired_sids]  # a reset sent twice would have retired a link
    assert dead_letters(soak_stack, "KdocsRequestsDeadLetterQueue") == []


def create_until_answered(url: str, key: str, body: dict) -> requests.Response:
    """A client that retries with the same Idempotency-Key after 5xx, 429 and 409, once Retry-After has passed."""
    for _ in range(20):
        answer = requests.post(url, json=body, headers={"Idempotency-Key": key}, auth=SigV4(), timeout=35)
        observe(answer.content)
        if answer.status_code not in (409, 429, 502, 504):
            return answer
        time.sleep(float(answer.headers.get("Retry-After", "0.5")))
    raise AssertionError(f"{key} was never answered")


def test_http_soak_with_idempotency_key_retries(soak_stack):
    sim = soak_stack.sims["pan123"]
    before = set(sim.shares)
    url = f"{soak_stack.gateway.url}/v1/shares/123pan"
    bodies = {
        f"http-{i}": {"name": f"http-soak-{i}", "expire_days": 1, "file_ids": [i + 1]} for i in range(HTTP_REQUESTS)
    }
    for i in range(HTTP_REQUESTS):
        if fault := fault_for(i):
            when = {"shareName": f"http-soak-{i}"}
            sim.faults.add(fault.pop("kind"), method="POST", path=PAN123_CREATE, body=when, **fault)

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = dict(
            zip(bodies, pool.map(lambda key: create_until_answered(url, key, bodies[key]), bodies), strict=True)
        )

    made = [share for share_id, share in sim.shares.items() if share_id not in before]
    report("123pan http", Counter(answer.status_code for answer in answers.values()), shares=len(made))
    assert len(sim.faults) == 0, "a planned fault never met its request"
    assert Counter(answer.status_code for answer in answers.values()) == {201: HTTP_REQUESTS}
    assert Counter(share["shareName"] for share in made) == {body["name"]: 1 for body in bodies.values()}
    assert {answer.json()["share_id"] for answer in answers.values()} == {str(share["shareId"]) for share in made}


def test_the_worst_answer_comes_before_api_gateway_gives_up():
    """ProviderTimeoutSeconds at its allowed 25 and a provider that never answers in time: the function's own 504
    comes back (not API Gateway's 30 s timeout), with no call left unfinished."""
    with LocalStack(sim_lifetime_s=300, parameters={"ProviderTimeoutSeconds": "25"}) as stack:
        stack.sims["pan123"].faults.add("timeout", path="/api/v1/share/list", delay=60, times=5)
        started = time.monotonic()
        answer = requests.get(f"{stack.gateway.url}/v1/shares/123pan?limit=10", auth=SigV4(), timeout=60)
        elapsed = time.monotonic() - started
        print(json.dumps({"worst_case_answer_s": round(elapsed, 2)}))

    assert (answer.status_code, answer.json()["error"]["code"]) == (504, "provider_timeout")
    assert sum(call.path == "/api/v1/share/list" for call in stack.sims["pan123"].requests) == 1
