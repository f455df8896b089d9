"""Lambda's event sources for the local stack: SQS (poll, invoke with a batch, delete what succeeded), schedules."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from local.runtime.functions import FunctionRuntime, InvocationError

LOGGER = logging.getLogger(__name__)
# How long a receive waits for messages (SQS long polling): also the longest a poller takes to notice `stopping`.
POLL_WAIT_S = 1
# After a failed receive or delete: how long a poller waits before trying again, as the mapping backs off.
RETRY_AFTER_S = 1
# How long `stop()` waits for a source's threads in all: a poll ends within POLL_WAIT_S, an invocation when its worker
# is stopped (LocalStack.stop stops the workers first).
STOP_WAIT_S = 10


class EventSourceMappingRefused(Exception):
    """CreateEventSourceMapping's InvalidParameterValueException: Lambda makes no such mapping."""


def check_visibility_timeout(sqs: Any, queue_url: str, function_timeout_s: int) -> None:
    """Refuses, in CreateEventSourceMapping's words, a queue whose visibility timeout is shorter than the function's
    timeout: its messages would come back while a batch still runs."""
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["VisibilityTimeout"])["Attributes"]
    visibility_s = int(attributes["VisibilityTimeout"])
    if visibility_s < function_timeout_s:
        raise EventSourceMappingRefused(
            f"Queue visibility timeout: {visibility_s} seconds is less than"
            f" Function timeout: {function_timeout_s} seconds"
        )


class QueuePoller:
    """Lambda's SQS event source mapping, as "Handling errors for an SQS event source in Lambda" and "Creating and
    configuring an Amazon SQS event source mapping" describe it: the messages of a batch that succeeded are deleted;
    a failed one (reported in batchItemFailures, or all of them when the invocation fails or times out) is left as it
    is, to come back when its visibility timeout ends: the queue's, or the one the function itself set with
    ChangeMessageVisibility. The mapping never changes a message's visibility, so neither does this poller.

    As the mapping, it outlives SQS errors: a failed receive or delete is logged in one line and tried again. Once
    `stopping` is set it polls no more, delivers nothing more, and ends its threads quietly whatever fails then (in a
    shutdown, the emulator or the function's workers may be gone first).
    """

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        queue_arn: str,
        runtime: FunctionRuntime,
        *,
        batch_size: int,
        concurrency: int,
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.runtime = runtime
        self.batch_size = batch_size
        self.stopping = threading.Event()
        # Once stopping, a request that could not reach SQS is not retried (botocore backs off between attempts).
        sqs.meta.events.register_first("needs-retry.sqs", self._no_retry_once_stopping, unique_id=f"poller-{id(self)}")
        name = queue_url.rsplit("/", 1)[-1]
        self.threads = [
            threading.Thread(target=self._poll, name=f"sqs-poller-{name}-{i}", daemon=True) for i in range(concurrency)
        ]

    def start(self) -> QueuePoller:
        for thread in self.threads:
            thread.start()
        return self

    def stop(self, wait_s: float = STOP_WAIT_S) -> None:
        """Stop polling and wait (at most `wait_s` in all) for the threads to end."""
        self.stopping.set()
        _join(self.threads, wait_s)

    def _no_retry_once_stopping(self, caught_exception: Exception | None = None, **_: Any) -> bool | None:
        return False if caught_exception is not None and self.stopping.is_set() else None  # None: botocore decides

    def _poll(self) -> None:
        while not self.stopping.is_set():
            try:
                self._poll_once()
            except (BotoCoreError, ClientError) as error:
                # Stopping, or told to within a moment: a terminal's Ctrl-C reaches the emulator's process too, so
                # it may be gone before the stack sets `stopping`.
                if self.stopping.wait(RETRY_AFTER_S):
                    return
                LOGGER.warning("SQS event source of %s: %s; trying again", self.queue_arn, error)
            except Exception:
                if self.stopping.is_set():
                    return  # what the shutdown took away (a worker, a connection) failed the delivery
                raise

    def _poll_once(self) -> None:
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=POLL_WAIT_S,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        # Received as the shutdown began: left in the queue (they come back when their visibility timeout ends).
        if messages and not self.stopping.is_set():
            self._deliver(messages)

    def _deliver(self, messages: list[dict[str, Any]]) -> None:
        try:
            answer = self.runtime.invoke({"Records": [sqs_record(message, self.queue_arn) for message in messages]})
            failed = {failure["itemIdentifier"] for failure in (answer or {}).get("batchItemFailures", [])}
        except InvocationError:
            failed = {message["MessageId"] for message in messages}
        done = [message for message in messages if message["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )


def sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """A received message as Lambda's SQS event source mapping hands it to the function."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": hashlib.md5(message["Body"].encode()).hexdigest(),  # noqa: S324 - SQS's own checksum
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3],
    }


class Schedule:
    """EventBridge Scheduler for the local stack: invoke a function now, then every `period_s`."""

    def __init__(self, runtime: FunctionRuntime, period_s: float) -> None:
        self.runtime = runtime
        self.period_s = period_s
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"schedule-{runtime.spec.name}", daemon=True)

    @property
    def threads(self) -> list[threading.Thread]:
        return [self.thread]

    def start(self) -> Schedule:
        self.thread.start()
        return self

    def stop(self, wait_s: float = STOP_WAIT_S) -> None:
        """Stop the schedule and wait (at most `wait_s`) for a run in progress to end."""
        self.stopping.set()
        _join(self.threads, wait_s)

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                # As in AWS, a failed run is only logged by the function; the next run tries again.
                with contextlib.suppress(InvocationError):
                    self.runtime.invoke({"source": "aws.scheduler", "detail-type": "Scheduled Event", "detail": {}})
            except Exception:
                if self.stopping.is_set():
                    return  # the shutdown took the function away during the run
                raise
            self.stopping.wait(self.period_s)


def _join(threads: list[threading.Thread], wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    for thread in threads:
        if thread.ident is not None:  # started
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
