"""The SQS event source against moto's SQS: what succeeded is deleted, what failed is left for SQS to bring back.

A test-only function (tests/handlers/queue_probe.py) runs in real workers; the queue's visibility timeout is 1 s, so
SQS itself brings failed messages back within the test.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from local.aws.emulator import LocalAws
from local.runtime.event_sources import QueuePoller
from local.runtime.functions import FunctionRuntime
from local.stack import TEMPLATE
from local.template import FunctionSpec, Template

HANDLERS = Path(__file__).resolve().parents[1] / "handlers"
VISIBILITY_TIMEOUT_S = 1
WAIT_S = 30


@dataclass(frozen=True)
class Queue:
    url: str
    arn: str


def new_queue(aws: LocalAws) -> Queue:
    sqs = aws.client("sqs")
    url = sqs.create_queue(
        QueueName=f"probe-{uuid.uuid4().hex[:8]}", Attributes={"VisibilityTimeout": str(VISIBILITY_TIMEOUT_S)}
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return Queue(url, arn)


def send(aws: LocalAws, queue: Queue, order: dict) -> str:
    return str(aws.client("sqs").send_message(QueueUrl=queue.url, MessageBody=json.dumps(order))["MessageId"])


def depth(aws: LocalAws, queue: Queue) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = aws.client("sqs").get_queue_attributes(QueueUrl=queue.url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[name]) for name in names)


class Deliveries:
    """What the function noted: the start and the end of each delivery, in order."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def notes(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines()]

    def count(self, moment: str, message_id: str) -> int:
        return sum(note["moment"] == moment and note["id"] == message_id for note in self.notes())


@pytest.fixture
def deliveries(tmp_path: Path) -> Deliveries:
    return Deliveries(tmp_path / "deliveries.jsonl")


@pytest.fixture
def queue(aws: LocalAws) -> Queue:
    return new_queue(aws)


def runtime_for(deliveries: Deliveries, aws: LocalAws, timeout_s: int) -> FunctionRuntime:
    spec = FunctionSpec(
        logical_id="QueueProbe",
        name="queue-probe",
        code_dir=HANDLERS,
        module="queue_probe",
        handler="lambda_handler",
        environment={"DELIVERIES": str(deliveries.path)},
        timeout_s=timeout_s,
    )
    return FunctionRuntime(spec, aws.env)


@contextmanager
def polling(
    aws: LocalAws, queue: Queue, deliveries: Deliveries, *, timeout_s: int = 10, concurrency: int = 1
) -> Iterator[QueuePoller]:
    runtime = runtime_for(deliveries, aws, timeout_s)
    poller = QueuePoller(aws.client("sqs"), queue.url, queue.arn, runtime, batch_size=10, concurrency=concurrency)
    poller.start()
    try:
        yield poller
    finally:
        poller.stopping.set()
        runtime.stop()
        poller.stop()


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.1)


def test_a_failed_records_visibility_stays_as_the_function_set_it(aws, queue, deliveries):
    postponed = send(aws, queue, {"fail": True, "visibility_s": 30})
    untouched = send(aws, queue, {"fail": True})

    with polling(aws, queue, deliveries):
        wait_until(lambda: deliveries.count("end", untouched) >= 3, "the untouched failure to come back twice")

    assert deliveries.count("start", postponed) == 1


def test_successes_are_deleted_and_failures_come_back(aws, queue, deliveries):
    succeeding = send(aws, queue, {})
    failing = send(aws, queue, {"fail": True})

    with polling(aws, queue, deliveries):
        wait_until(lambda: deliveries.count("end", failing) >= 2, "the failure to come back")

    assert deliveries.count("start", succeeding) == 1
    assert depth(aws, queue) == 1


def test_a_timed_out_batch_is_a_failed_batch_and_its_worker_is_replaced(aws, queue, deliveries):
    slow = send(aws, queue, {"sleep_s": 30})

    with polling(aws, queue, deliveries, timeout_s=1):
        wait_until(lambda: deliveries.count("start", slow) >= 2, "the timed-out message to come back")

    assert deliveries.count("end", slow) == 0
    assert depth(aws, queue) == 1
    first, second = (note["pid"] for note in deliveries.notes()[:2])
    assert first != second


def test_a_message_comes_back_while_a_slow_invocation_still_runs(aws, queue, deliveries):
    slow = send(aws, queue, {"sleep_s": VISIBILITY_TIMEOUT_S * 3})

    with polling(aws, queue, deliveries, concurrency=2):
        wait_until(lambda: deliveries.count("end", slow) >= 1, "the first delivery to end")

    moments = [note["moment"] for note in deliveries.notes() if note["id"] == slow]
    assert moments[:3] == ["start", "start", "end"]  # at least once: SQS delivered it again before it was done


def test_the_poller_ends_quietly_when_the_emulator_stops_first(deliveries, monkeypatch):
    thread_errors: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", thread_errors.append)
    emulator = LocalAws(separate_process=True).start()
    queue = new_queue(emulator)
    busy = send(emulator, queue, {"sleep_s": 1})

    with polling(emulator, queue, deliveries) as poller:
        wait_until(lambda: deliveries.count("start", busy) == 1, "the delivery to start")
        poller.stopping.set()
        emulator.stop()  # while the invocation runs: its delete cannot reach SQS
        wait_until(lambda: deliveries.count("end", busy) == 1, "the invocation to end")
        for thread in poller.threads:
            thread.join(timeout=WAIT_S)

    assert not any(thread.is_alive() for thread in poller.threads)
    assert thread_errors == []


def test_the_requests_queues_keep_the_templates_visibility_timeout():
    template = Template(TEMPLATE)

    assert template.queue_visibility_timeout_s("Pan123RequestsQueue") == 360
    assert template.queue_visibility_timeout_s("KdocsRequestsQueue") == 360
