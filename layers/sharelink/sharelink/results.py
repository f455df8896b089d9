"""Where the outcome of a storage request or an upload goes: a result object in the bucket and an EventBridge event."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from sharelink.errors import StorageUnavailable
from sharelink.observability import logger, metrics

EVENT_SOURCE = "sharelink"
# What one PutEvents call may carry: 10 entries, less than 256 KB of them.
MAX_ENTRIES = 10
MAX_CALL_BYTES = 256 * 1024
# A result object's metadata: the S3 sequencer of the request PUT it answers.
SEQUENCER = "sequencer"
# Conditional writes of a result that lost to another writer each time, before the record is retried.
WRITE_ATTEMPTS = 3
# A conditional PutObject that lost: the object is not as seen (412), or another write to it was under way (409).
LOST_RACE = ("PreconditionFailed", "ConditionalRequestConflict")


class EventRefused(RuntimeError):
    """EventBridge did not take an outcome's event."""


@dataclass(frozen=True)
class Outcome:
    """A result object written, and the EventBridge entry that announces it."""

    key: str
    status: str
    entry: dict[str, str]

    def size(self) -> int:
        """What the entry counts for against a call's 256 KB, by EventBridge's rule for entries without a Time."""
        return sum(len(self.entry[name].encode()) for name in ("Source", "DetailType", "Detail"))

    def announced(self) -> None:
        created = self.status == "created"
        metrics.add_metric(name="SharesCreated" if created else "RequestsRejected", unit="Count", value=1)
        logger.info("outcome published", extra={"key": self.key, "status": self.status})


class Results:
    def __init__(self, s3: Any, events: Any, event_bus: str = "default") -> None:
        self.s3 = s3
        self.events = events
        self.event_bus = event_bus

    def publish(self, bucket: str, key: str, result: dict[str, Any]) -> None:
        """Write `result` at `key` and put it as the detail of `Share Created` or `Share Rejected`; publishing the
        same result again (a redelivery, a replay) writes the same again."""
        outcome = self.write(bucket, key, result)
        (refusal,) = self.put([outcome.entry])
        if refusal:
            raise EventRefused(f"EventBridge refused the event: {refusal}")
        outcome.announced()

    def write(self, bucket: str, key: str, result: dict[str, Any], **put: Any) -> Outcome:
        """Write `result` at `key` (with PutObject's further arguments `put`); the answer holds the event still to
        put."""
        outcome = self.announcement(key, result)
        self.s3.put_object(
            Bucket=bucket, Key=key, Body=outcome.entry["Detail"].encode(), ContentType="application/json", **put
        )
        return outcome

    def write_in_order(self, bucket: str, key: str, result: dict[str, Any], sequencer: str) -> Outcome:
        """Write the result of the request PUT with this S3 `sequencer` at `key`, unless the result there answers a
        later PUT of the same request key: S3 notifies in no set order, and a redelivery comes when it comes. Each
        write is conditional on what was seen, so a result written meanwhile is not replaced blindly either."""
        if not sequencer:
            return self.write(bucket, key, result)
        # First as the key's first result: reading a missing key is 403 without s3:ListBucket, not 404.
        condition = {"IfNoneMatch": "*"}
        for _ in range(WRITE_ATTEMPTS):
            try:
                return self.write(bucket, key, result, Metadata={SEQUENCER: sequencer}, **condition)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") not in LOST_RACE:
                    raise
            head = self.s3.head_object(Bucket=bucket, Key=key)
            if later(head.get("Metadata", {}).get(SEQUENCER, ""), sequencer):
                logger.info("a later version of this request has its result already: this one is only announced")
                return self.announcement(key, result)
            condition = {"IfMatch": head["ETag"]}
        raise StorageUnavailable(f"the result object was rewritten by others {WRITE_ATTEMPTS} times meanwhile")

    def announcement(self, key: str, result: dict[str, Any]) -> Outcome:
        """The event that announces `result`, still to put."""
        entry = {
            "Source": EVENT_SOURCE,
            "DetailType": "Share Created" if result["status"] == "created" else "Share Rejected",
            "Detail": json.dumps(result, ensure_ascii=False),
            "EventBusName": self.event_bus,
        }
        return Outcome(key, result["status"], entry)

    def put(self, entries: list[dict[str, str]]) -> list[str | None]:
        """One PutEvents call; for each entry, why EventBridge refused it, or None."""
        answer = self.events.put_events(Entries=entries)
        return [
            f"{entry['ErrorCode']}: {entry.get('ErrorMessage', '')}" if "ErrorCode" in entry else None
            for entry in answer["Entries"]
        ]


type Queued = tuple[Outcome, asyncio.Future[str | None]]


class EventBatch:
    """The events of one SQS batch, put in as few PutEvents calls as EventBridge allows once each of its `records`
    has handed in its outcomes (or nothing). A record's coroutine awaits the answers for its own entries: no thread
    waits for the others, and an entry refused, or a call that failed, fails only the records it carried."""

    def __init__(self, results: Results, records: int, executor: Executor) -> None:
        self.results = results
        self.executor = executor
        self.awaited = records
        self.queued: list[Queued] = []
        self.flushing: asyncio.Task[None] | None = None  # held here: the event loop only keeps a weak reference

    async def publish(self, outcomes: list[Outcome]) -> None:
        """Hand in a record's outcomes; answer once their events are in, raise EventRefused if one is not."""
        loop = asyncio.get_running_loop()
        answers: list[asyncio.Future[str | None]] = [loop.create_future() for _ in outcomes]
        self.queued += zip(outcomes, answers, strict=True)
        self._handed_in()
        refusals = [await answer for answer in answers]
        for outcome, refusal in zip(outcomes, refusals, strict=True):
            if refusal is None:
                outcome.announced()
            else:
                logger.warning(
                    "the outcome's event was not put; the request will be retried",
                    extra={"key": outcome.key, "reason": refusal},
                )
        if any(refusals):
            raise EventRefused(f"EventBridge did not take {sum(map(bool, refusals))} event(s) of this record")

    def skip(self) -> None:
        """A record that ends without outcomes (it failed) hands in nothing."""
        self._handed_in()

    def _handed_in(self) -> None:
        """The last record to hand in starts putting the batch's events."""
        self.awaited -= 1
        if self.awaited == 0 and self.queued:
            self.flushing = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        await asyncio.gather(*(self._put(call) for call in calls(self.queued)))

    async def _put(self, call: list[Queued]) -> None:
        entries = [outcome.entry for outcome, _ in call]
        try:
            refusals = await asyncio.get_running_loop().run_in_executor(self.executor, self.results.put, entries)
        except Exception as error:
            logger.exception("a PutEvents call failed", extra={"entries": len(entries)})
            refusals = [f"the PutEvents call failed: {error}"] * len(call)
        for (_, answer), refusal in zip(call, refusals, strict=True):
            answer.set_result(refusal)


def calls(queued: list[Queued]) -> Iterator[list[Queued]]:
    """The entries in order, cut where a call would carry more than EventBridge takes."""
    call: list[Queued] = []
    size = 0
    for item in queued:
        if call and (len(call) == MAX_ENTRIES or size + item[0].size() >= MAX_CALL_BYTES):
            yield call
            call, size = [], 0
        call.append(item)
        size += item[0].size()
    if call:
        yield call


def later(sequencer: str, than: str) -> bool:
    """Whether an S3 sequencer tells of a later event on the same key than another: the shorter is right-padded with
    zeros, then they compare as strings (AWS's rule; sequencers differ in length)."""
    width = max(len(sequencer), len(than))
    return sequencer.upper().ljust(width, "0") > than.upper().ljust(width, "0")
