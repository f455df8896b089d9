"""Share requests dropped into S3, delivered through SQS: one share, one result object and one event each."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.batch import AsyncBatchProcessor, EventType, async_process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config
from botocore.exceptions import ClientError
from pydantic import ValidationError

from sharelink.attempts import Attempts
from sharelink.aws import Session
from sharelink.deadline import DEADLINE
from sharelink.errors import (
    MalformedJson,
    OutcomeUnknown,
    ProviderForbidden,
    ProviderNotFound,
    ProviderRateLimited,
    ProviderRejected,
    RequestObjectMissing,
    RequestTooLarge,
    RequestUnreadable,
    RetryLater,
    SharelinkError,
)
from sharelink.idempotency import ONE_DAY, attempts_from_env, dynamodb, persistence_from_env
from sharelink.observability import logger
from sharelink.providers.base import RequestModel, ShareProvider
from sharelink.results import EventBatch, Outcome, Results
from sharelink.share import rfc3339
from sharelink.uploads import read_error
from sharelink.validation import MAX_BODY_BYTES, parse_json_body, validation_error

REQUESTS = "requests/"
RESULTS = "results/"
# Failures that no retry can mend: the request gets a `rejected` result. Everything else is retried by SQS.
PERMANENT = (
    ProviderNotFound,
    ProviderForbidden,
    ProviderRejected,
    RequestObjectMissing,
    RequestUnreadable,
    RequestTooLarge,
    MalformedJson,
    OutcomeUnknown,
)
# SQS keeps a message invisible for 12 hours at the most, counted from its receive, which was at most a function's
# longest timeout (15 minutes) and an event source mapping's longest batching window (5 minutes) ago; asked for more,
# SQS refuses the change and the message comes back after the queue's visibility timeout.
MAX_VISIBILITY_S = 12 * 3600 - (15 + 5) * 60
# A rate limit waits at least this long at its first receive, twice as long at each next one: 123pan's code 429 comes
# without Retry-After (1 s assumed), and 5 receives a second apart would reach the dead-letter queue in seconds.
RATE_LIMIT_BACKOFF_S = 10
DEFAULT_CONCURRENCY = 10


@dataclass(frozen=True)
class StoredRequest:
    """The S3 object a notification names; (bucket, key, etag, version) identifies one request. The sequencer
    orders the PUTs of one key; it is not part of the identity (a redelivery keeps it, a copy has its own)."""

    bucket: str
    key: str
    etag: str
    version_id: str | None
    sequencer: str = ""

    @classmethod
    def from_notification(cls, record: dict[str, Any]) -> StoredRequest:
        s3 = record["s3"]
        return cls(
            bucket=s3["bucket"]["name"],
            key=unquote_plus(s3["object"]["key"]),  # S3 URL-encodes keys in notifications
            etag=s3["object"].get("eTag", ""),
            version_id=s3["object"].get("versionId"),
            sequencer=s3["object"].get("sequencer", ""),
        )

    @property
    def result_key(self) -> str:
        return RESULTS + self.key.removeprefix(REQUESTS)

    def identity(self) -> dict[str, str | None]:
        return {"bucket": self.bucket, "key": self.key, "etag": self.etag, "version_id": self.version_id}


class ShareRequests:
    """The events function's work for one provider: `handle` takes an SQS batch and reports its failures."""

    def __init__(
        self,
        provider: ShareProvider,
        store: BasePersistenceLayer,
        attempts: Attempts,
        *,
        s3: Any,
        sqs: Any,
        events: Any,
        event_bus: str = "default",
        concurrency: int = DEFAULT_CONCURRENCY,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.provider = provider
        self.attempts = attempts
        self.s3 = s3
        self.sqs = sqs
        self.results = Results(s3, events, event_bus)
        self.clock = clock
        # Made once per container: a batch's records each have a thread, and a reader for their request object.
        self.workers = ThreadPoolExecutor(concurrency, thread_name_prefix="record")
        self.readers = ThreadPoolExecutor(concurrency, thread_name_prefix="read")
        self.prefix = f"{REQUESTS}{provider.name}/"
        self.idempotency = IdempotencyConfig(expires_after_seconds=ONE_DAY)
        self.outcome_once = idempotent_function(
            data_keyword_argument="request",
            persistence_store=store,
            config=self.idempotency,
            key_prefix=f"{provider.name}-stored-request",
        )(self._outcome)

    @classmethod
    def from_env(cls, provider: ShareProvider, session: Session) -> ShareRequests:
        concurrency = int(os.environ.get("RECORD_CONCURRENCY", DEFAULT_CONCURRENCY))
        pooled = Config(max_pool_connections=concurrency)
        table = dynamodb(session, concurrency)
        return cls(
            provider,
            persistence_from_env(table),
            attempts_from_env(table),
            # S3 serves both the record threads (result objects) and the readers (request objects).
            s3=session.client("s3", config=Config(max_pool_connections=2 * concurrency)),
            sqs=session.client("sqs", config=pooled),
            events=session.client("events", config=pooled),
            event_bus=os.environ.get("EVENT_BUS_NAME", "default"),
            concurrency=concurrency,
        )

    def handle(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        self.idempotency.register_lambda_context(context)
        # Failed records go back to the queue one by one, even when the whole batch failed.
        processor = AsyncBatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        batch = EventBatch(self.results, len(event.get("Records", [])), self.workers)
        with DEADLINE.running(context.get_remaining_time_in_millis()):
            return dict(
                async_process_partial_response(
                    event=event,
                    record_handler=partial(self._record, batch=batch),
                    processor=processor,
                    context=context,
                )
            )

    async def _record(self, record: SQSRecord, batch: EventBatch) -> None:
        try:
            outcomes = await asyncio.get_running_loop().run_in_executor(self.workers, self._work, record)
        except BaseException:
            batch.skip()
            raise
        await batch.publish(outcomes)

    def _work(self, record: SQSRecord) -> list[Outcome]:
        try:
            return self.process_message(record.body)
        except IdempotencyAlreadyInProgressError:
            logger.info("another delivery of this request is in progress; this one will be retried")
            raise
        except SharelinkError as error:
            logger.warning(
                "share request will be retried", extra={"code": error.code, "provider_code": error.provider_code}
            )
            if isinstance(error, RetryLater):
                self._delay(record, wait_s(error, int(record.attributes.approximate_receive_count or 1)))
            raise
        except Exception:
            logger.exception("share request failed; it will be retried")
            raise
        finally:
            logger.thread_safe_remove_keys(["request_key"])

    def _delay(self, record: SQSRecord, seconds: int) -> None:
        """Come back when the provider said to: the event source mapping leaves a failed record's visibility as is."""
        _, _, _, region, account, queue = record.event_source_arn.split(":")
        try:
            self.sqs.change_message_visibility(
                QueueUrl=f"https://sqs.{region}.amazonaws.com/{account}/{queue}",
                ReceiptHandle=record.receipt_handle,
                VisibilityTimeout=min(seconds, MAX_VISIBILITY_S),
            )
        except ClientError as error:  # the record still fails; it comes back after the queue's visibility timeout
            logger.warning("could not delay the request", extra={"reason": str(error)})
            return
        logger.info("the request comes back later", extra={"retry_after_s": seconds})

    def process_message(self, body: str) -> list[Outcome]:
        """The outcome of each share request a message names, its result object written, its event still to put."""
        notification = json.loads(body)
        if notification.get("Event") == "s3:TestEvent":
            logger.info("skipping s3:TestEvent", extra={"bucket": notification.get("Bucket")})
            return []
        outcomes = []
        for record in notification.get("Records", []):
            request = StoredRequest.from_notification(record)
            if not (request.key.startswith(self.prefix) and request.key.endswith(".json")):
                logger.info("skipping an object that is not a share request", extra={"key": request.key})
                continue
            # What this record thread logs from here on names the request (thread-local: the batch shares a logger).
            logger.thread_safe_append_keys(request_key=request.key)
            outcomes.append(self._write(request, self._outcome_of(request)))
        return outcomes

    def _outcome_of(self, request: StoredRequest) -> dict[str, Any]:
        """The request object is read while the idempotency record is written; a replayed outcome needs no read."""
        identity = request.identity()
        reading = self.readers.submit(self._read, identity)
        try:
            return self.outcome_once(request=identity, reading=reading)
        finally:
            reading.cancel()  # a read not started yet is not needed any more

    def _outcome(self, request: dict[str, Any], reading: Future[RequestModel]) -> dict[str, Any]:
        """Validate, create: run once per stored request, whatever the number of deliveries."""
        try:
            share = self.attempts.create_once(json.dumps(request, sort_keys=True), reading.result(), self.provider)
        except PERMANENT as error:
            return self._rejected(error)
        except ValidationError as invalid:
            return self._rejected(validation_error(invalid.errors()))
        return {"status": "created", "share": share.model_dump(mode="json"), "processed_at": rfc3339(self.clock())}

    def _read(self, request: dict[str, Any]) -> RequestModel:
        """The request object's body, validated as the HTTP route validates it."""
        version = {"VersionId": request["version_id"]} if request["version_id"] else {}
        try:
            stored = self.s3.get_object(Bucket=request["bucket"], Key=request["key"], **version)
        except ClientError as error:
            raise read_error(error, "the request object") from None
        if stored["ContentLength"] > MAX_BODY_BYTES:
            raise RequestTooLarge(f"the request object is over {MAX_BODY_BYTES // 1024} KiB")
        return self.provider.create_request.model_validate(parse_json_body(stored["Body"].read()))

    def _rejected(self, error: SharelinkError) -> dict[str, Any]:
        return {"status": "rejected", "error": error.to_dict(), "processed_at": rfc3339(self.clock())}

    def _write(self, request: StoredRequest, outcome: dict[str, Any]) -> Outcome:
        source = {"bucket": request.bucket, "key": request.key, "etag": request.etag}
        return self.results.write_in_order(
            request.bucket,
            request.result_key,
            {"status": outcome["status"], "request": source} | outcome,
            request.sequencer,
        )


def wait_s(error: RetryLater, receives: int) -> int:
    """How long a record refused with `error` at its `receives`-th receive stays invisible: the provider's
    Retry-After; for a rate limit, no less than a backoff that doubles with each receive."""
    if isinstance(error, ProviderRateLimited):
        return max(error.retry_after, RATE_LIMIT_BACKOFF_S * 2 ** (receives - 1))
    return error.retry_after
