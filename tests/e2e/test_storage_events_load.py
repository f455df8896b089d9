"""200 share requests with 10% transient provider faults and 10% duplicate deliveries: nothing lost, nothing twice."""

from __future__ import annotations

from collections import Counter

from tests.e2e.test_storage_events import (
    PAN123_CREATE,
    put_request,
    queue_depth,
    result_of,
    send_notification,
    wait_for,
)

REQUESTS = 200


def test_every_request_has_one_result_and_one_share(stack):
    sim = stack.sims["pan123"]
    names = [f"load-{i:03d}" for i in range(REQUESTS)]
    keys = []
    for i, name in enumerate(names):
        if i % 10 == 3:
            sim.faults.add("http500", path=PAN123_CREATE)  # 10% of the creates fail once
        keys.append(put_request(stack, "123pan", f"{name}.json", {"name": name, "expire_days": 7, "file_ids": [i + 1]}))
        if i % 10 == 7:
            send_notification(stack, "Pan123RequestsQueue", keys[-1])  # 10% are delivered twice

    results = {key: wait_for(lambda key=key: result_of(stack, key), key) for key in keys}
    wait_for(lambda: queue_depth(stack, "Pan123RequestsQueue") == 0, "the queue to drain")

    assert Counter(result["status"] for result in results.values()) == {"created": REQUESTS}
    assert {result["share"]["name"] for result in results.values()} == set(names)
    created = Counter(share["shareName"] for share in sim.shares.values())
    assert created == dict.fromkeys(names, 1)  # exactly one share per distinct request
    assert sum(call.path == PAN123_CREATE for call in sim.requests) == REQUESTS + 20  # + the failed attempts
    assert queue_depth(stack, "Pan123RequestsDeadLetterQueue") == 0
