"""The SQS poller and the schedule around a shutdown, with stand-ins for SQS and the function (no emulator): what they
do with errors before and after `stopping`, and that they end within their stop()."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from local.runtime import event_sources
from local.runtime.event_sources import QueuePoller, Schedule
from local.runtime.functions import InvocationError

QUEUE_URL = "http://127.0.0.1:1/123456789012/probe"
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:probe"
WAIT_S = 10


class Events:
    def __init__(self) -> None:
        self.first: list[Callable[..., Any]] = []

    def register_first(self, event: str, handler: Callable[..., Any], unique_id: str) -> None:
        assert event == "needs-retry.sqs"
        self.first.append(handler)


class StandInSqs:
    """receive_message answers from `answers` in turn (an exception is raised), then waits as a long poll does."""

    def __init__(self, *answers: Any) -> None:
        self.meta = SimpleNamespace(events=Events())
        self.answers = list(answers)
        self.receives = 0
        self.deleted: list[str] = []

    def receive_message(self, **_: Any) -> dict[str, Any]:
        self.receives += 1
        if not self.answers:
            time.sleep(0.05)
            return {}
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def delete_message_batch(self, Entries: list[dict[str, str]], **_: Any) -> None:
        self.deleted += [entry["ReceiptHandle"] for entry in Entries]


class StandInRuntime:
    def __init__(self, on_invoke: Callable[[dict[str, Any]], Any] = lambda event: None) -> None:
        self.spec = SimpleNamespace(name="probe")
        self.on_invoke = on_invoke
        self.events: list[dict[str, Any]] = []

    def invoke(self, event: dict[str, Any]) -> Any:
        self.events.append(event)
        return self.on_invoke(event)


def message(number: int) -> dict[str, Any]:
    return {"MessageId": f"m{number}", "ReceiptHandle": f"r{number}", "Body": "{}"}


def wait_until(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def thread_errors(monkeypatch) -> list[threading.ExceptHookArgs]:
    errors: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", errors.append)
    return errors


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch) -> None:
    monkeypatch.setattr(event_sources, "RETRY_AFTER_S", 0.05)


def poller(sqs: StandInSqs, runtime: StandInRuntime, concurrency: int = 1) -> QueuePoller:
    return QueuePoller(sqs, QUEUE_URL, QUEUE_ARN, runtime, batch_size=10, concurrency=concurrency)  # type: ignore[arg-type]


def test_an_sqs_error_is_one_log_line_and_polling_goes_on(thread_errors, caplog):
    sqs = StandInSqs(EndpointConnectionError(endpoint_url=QUEUE_URL), {"Messages": [message(1)]})
    running = poller(sqs, StandInRuntime()).start()

    with caplog.at_level(logging.WARNING, logger=event_sources.__name__):
        wait_until(lambda: sqs.deleted == ["r1"], "the next batch to be delivered")
        running.stop()

    assert [record.getMessage() for record in caplog.records] == [
        f'SQS event source of {QUEUE_ARN}: Could not connect to the endpoint URL: "{QUEUE_URL}"; trying again'
    ]
    assert not any(thread.is_alive() for thread in running.threads)
    assert thread_errors == []


def test_an_sqs_error_once_stopping_ends_the_threads_quietly(thread_errors, caplog):
    sqs = StandInSqs()
    running = poller(sqs, StandInRuntime(), concurrency=3).start()
    running.stopping.set()
    sqs.answers = [EndpointConnectionError(endpoint_url=QUEUE_URL)] * 3  # the emulator went first

    with caplog.at_level(logging.WARNING, logger=event_sources.__name__):
        running.stop()

    assert not any(thread.is_alive() for thread in running.threads)
    assert caplog.records == []
    assert thread_errors == []


def test_once_stopping_a_failed_request_is_not_retried():
    sqs = StandInSqs()
    running = poller(sqs, StandInRuntime())
    (hook,) = sqs.meta.events.first
    failure = EndpointConnectionError(endpoint_url=QUEUE_URL)

    assert hook(caught_exception=failure, attempts=1) is None  # botocore's own retry rules decide
    running.stopping.set()
    assert hook(caught_exception=failure, attempts=1) is False
    assert hook(caught_exception=None, response=({}, {}), attempts=1) is None


def test_a_batch_received_as_the_stop_comes_is_left_in_the_queue(thread_errors):
    sqs = StandInSqs()
    runtime = StandInRuntime()
    running = poller(sqs, runtime)

    def received_then_stopping(**_: Any) -> dict[str, Any]:
        running.stopping.set()
        return {"Messages": [message(1)]}

    sqs.receive_message = received_then_stopping  # type: ignore[method-assign]
    running.start().stop()

    assert runtime.events == []
    assert sqs.deleted == []
    assert thread_errors == []


def test_a_delivery_the_shutdown_breaks_ends_quietly(thread_errors):
    sqs = StandInSqs({"Messages": [message(1)]})
    running = poller(sqs, StandInRuntime())

    def broken_by_the_shutdown(event: dict[str, Any]) -> None:
        running.stopping.set()
        raise ValueError("I/O operation on closed file")  # not an InvocationError: what a killed worker may leave

    running.runtime.on_invoke = broken_by_the_shutdown  # type: ignore[attr-defined]
    running.start().stop()

    assert not any(thread.is_alive() for thread in running.threads)
    assert thread_errors == []


def test_an_unexpected_error_outside_a_shutdown_is_still_loud(thread_errors):
    def bug(event: dict[str, Any]) -> None:
        raise ValueError("a bug")

    sqs = StandInSqs({"Messages": [message(1)]})
    running = poller(sqs, StandInRuntime(bug)).start()
    wait_until(lambda: thread_errors, "the thread's exception")
    running.stop()

    assert [type(error.exc_value) for error in thread_errors] == [ValueError]


def test_a_schedule_stops_quietly_when_its_function_goes_away(thread_errors):
    stopping_now = threading.Event()
    schedule: Schedule

    def run(event: dict[str, Any]) -> None:
        schedule.stopping.set()
        stopping_now.set()
        raise OSError("the worker was stopped")

    schedule = Schedule(StandInRuntime(run), period_s=3600)  # type: ignore[arg-type]
    schedule.start()
    stopping_now.wait(WAIT_S)
    schedule.stop()

    assert not schedule.thread.is_alive()
    assert thread_errors == []


def test_a_failed_run_waits_for_the_next(thread_errors):
    def failing(event: dict[str, Any]) -> None:
        raise InvocationError("the function failed")

    runtime = StandInRuntime(failing)
    schedule = Schedule(runtime, period_s=0.01).start()  # type: ignore[arg-type]
    wait_until(lambda: len(runtime.events) >= 3, "three runs")
    schedule.stop()

    assert not schedule.thread.is_alive()
    assert thread_errors == []
