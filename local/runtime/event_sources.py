"""Lambda's event sources for the local stack: SQS (poll, invoke with a batch, delete what succeeded), schedules."""

from __future__ import annotations

import contextlib
import hashlib
import threading
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from local.runtime.functions import FunctionRuntime, InvocationError


class QueuePoller:
    """Lambda's SQS event source mapping, as "Handling errors for an SQS event source in Lambda" and "Creating and
    configuring an Amazon SQS event source mapping" describe it: the messages of a batch that succeeded are deleted;
    a failed one (reported in batchItemFailures, or all of them when the invocation fails or times out) is left as it
    is, to come back when its visibility timeout ends: the queue's, or the one the function itself set with
    ChangeMessageVisibility. The mapping never changes a message's visibility, so neither does this poller.
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
        self.threads = [threading.Thread(target=self._poll, daemon=True) for _ in range(concurrency)]

    def start(self) -> QueuePoller:
        for thread in self.threads:
            thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=5)

    def _poll(self) -> None:
        while not self.stopping.is_set():
            try:
                self._poll_once()
            except (BotoCoreError, ClientError):
                if self.stopping.is_set():
                    return  # the emulator went away during the shutdown
                raise

    def _poll_once(self) -> None:
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=1,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if messages:
            self._deliver(messages)

    def _deliver(self, messages: list[dict[str, Any]]) -> None:
        try:
            answer = self.runtime.invoke({"Records": [self._record(message) for message in messages]})
            failed = {failure["itemIdentifier"] for failure in (answer or {}).get("batchItemFailures", [])}
        except InvocationError:
            failed = {message["MessageId"] for message in messages}
        done = [message for message in messages if message["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        """A record as Lambda's SQS event source mapping shapes it."""
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": hashlib.md5(message["Body"].encode()).hexdigest(),  # noqa: S324 - SQS's own checksum
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": self.queue_arn.split(":")[3],
        }


class Schedule:
    """EventBridge Scheduler for the local stack: invoke a function now, then every `period_s`."""

    def __init__(self, runtime: FunctionRuntime, period_s: float) -> None:
        self.runtime = runtime
        self.period_s = period_s
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Schedule:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)

    def _run(self) -> None:
        while not self.stopping.is_set():
            # As in AWS, a failed run is only logged by the function; the next run tries again.
            with contextlib.suppress(InvocationError):
                self.runtime.invoke({"source": "aws.scheduler", "detail-type": "Scheduled Event", "detail": {}})
            self.stopping.wait(self.period_s)
