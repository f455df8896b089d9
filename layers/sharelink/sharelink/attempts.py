"""At most one share per request: a create whose outcome is unknown is reconciled with the provider before any resend.

A timed-out create, or a connection dropped before the answer, may have made a share. Powertools idempotency forgets
a failed call, so a retry (same Idempotency-Key, or a storage-event redelivery) would create again. Each keyed
create therefore writes an attempt record before it sends; a later run of the same request that finds the record
first asks the provider for the share the earlier attempt may have made (`ShareProvider.find_created`):
- exactly one unclaimed candidate: that share is the answer, nothing is created;
- none, once the earlier attempt has had time to settle (`settle_s` after it started; a provider may still be
  working on a request its caller gave up on): nothing was made, and the create is sent; before that, the request
  is answered "still in progress, retry after N s" (409 over HTTP; a retried record on the storage path);
- several: which one is ours cannot be told, so nothing is created and the request fails with `outcome_unknown`.
A record remembers its request's body: the same key sent with another body is a conflict, never reconciled (a share
matching the other body's name may hold the first body's files).
Every share a request ends with is claimed (one item per share id), so two requests never answer the same share.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sharelink.errors import AttemptUnsettled, IdempotencyConflict, OutcomeUnknown, SharelinkError, StorageUnavailable
from sharelink.providers.base import Attempt, RequestModel, ShareProvider
from sharelink.share import Share

ONE_DAY = 24 * 3600
# How long after an attempt started a provider may still act on it (its own gateway's timeout, presumably).
DEFAULT_SETTLE_S = 60
# Claims outlive any retry of the request that made the share (Powertools remembers answers for a day).
CLAIM_LIFETIME_S = 30 * ONE_DAY
# An attempt record outlives every retry of its request: a storage request gets 5 receives, each up to 12 hours (SQS's
# longest visibility) after the one before, so its last may come two and a half days after its first attempt.
ATTEMPT_LIFETIME_S = 3 * ONE_DAY
# A batch read or write leaves what the table could not take now: it is sent again after these pauses.
BATCH_PAUSES_S = (0.05, 0.2, 0.5)
MAX_BATCH_GET = 100


class Attempts:
    """Attempt records, claims and the newest share id, in the idempotency table (key `id`, TTL `expiration`)."""

    def __init__(
        self,
        dynamodb: Any,
        table: str,
        *,
        settle_s: float = DEFAULT_SETTLE_S,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.dynamodb = dynamodb
        self.table = table
        self.settle = timedelta(seconds=settle_s)
        self.clock = clock

    def create_once(self, request_id: str, request: RequestModel, provider: ShareProvider) -> Share:
        """Create the share of `request` (identified by `request_id`), reconciling with an earlier attempt first."""
        attempt_key = f"attempt#{provider.name}#{_digest(request_id)}"
        newest_key = _newest_key(provider.name)
        items = self._get_each([attempt_key, newest_key])
        if attempt_key in items:
            _check_same_request(items[attempt_key], request)
            earlier = _attempt(items[attempt_key])
            found = self._adopt(provider, provider.find_created(request, earlier), attempt_key)
            if found is not None:
                return found
            self._check_settled(earlier)
        newest = items[newest_key]["share_id"]["N"] if newest_key in items else "0"
        self._record_attempt(attempt_key, provider, request, newest)
        try:
            share = provider.create_share(request)
        except SharelinkError as error:
            if not error.may_have_acted:
                self._forget(attempt_key)
            raise
        self._claim_as_newest(provider.name, share.share_id, attempt_key)
        return share

    def _check_settled(self, earlier: Attempt) -> None:
        unsettled = (earlier.started_at + self.settle - self.clock()).total_seconds()
        if unsettled > 0:
            raise AttemptUnsettled(
                "an earlier attempt of this request timed out and the provider may still be making its share: "
                f"retry in {math.ceil(unsettled)} s",
                retry_after=math.ceil(unsettled),
            )

    def _adopt(self, provider: ShareProvider, listed: list[Share], attempt_key: str) -> Share | None:
        candidates = list({share.share_id: share for share in listed}.values())  # a list may show a share twice
        claims = self._get_each([_claim_key(provider.name, share.share_id) for share in candidates])
        claimed_by = {key: claim["attempt"]["S"] for key, claim in claims.items()}
        unclaimed = [
            share
            for share in candidates
            if claimed_by.get(_claim_key(provider.name, share.share_id), attempt_key) == attempt_key
        ]
        if len(unclaimed) > 1:
            ids = ", ".join(share.share_id for share in unclaimed)
            raise OutcomeUnknown(
                f"an earlier attempt timed out and {len(unclaimed)} {provider.name} shares (ids {ids}) match this "
                "request: which one it made cannot be told, so none is created again",
                provider=provider.name,
            )
        if not unclaimed:
            return None
        share = unclaimed[0]
        self._claim(provider.name, share.share_id, attempt_key)
        return share

    def _record_attempt(self, attempt_key: str, provider: ShareProvider, request: RequestModel, newest: str) -> None:
        self.dynamodb.put_item(
            TableName=self.table,
            Item={
                "id": {"S": attempt_key},
                "started_at": {"S": self.clock().isoformat()},
                "request": {"S": _request_digest(request)},
                "before": {"S": json.dumps(provider.before_create(request))},
                "newest_share_id": {"N": newest},
                "expiration": {"N": str(int(time.time()) + ATTEMPT_LIFETIME_S)},
            },
        )

    def _claim(self, provider: str, share_id: str, attempt_key: str) -> None:
        """Claim a share an earlier attempt made, unless another request has claimed it."""
        try:
            self.dynamodb.put_item(
                TableName=self.table,
                Item=_claim_item(provider, share_id, attempt_key),
                ConditionExpression="attribute_not_exists(id) OR attempt = :mine",
                ExpressionAttributeValues={":mine": {"S": attempt_key}},
            )
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            raise OutcomeUnknown(
                f"the {provider} share {share_id} that matches this request was just claimed by another request",
                provider=provider,
            ) from None

    def _claim_as_newest(self, provider: str, share_id: str, attempt_key: str) -> None:
        """Claim the share this attempt made and note it as the newest made here, in one write.

        The newest id is written unconditionally: two creates finishing together may leave the lower of their ids,
        which only widens a later reconciliation's search (the other share is claimed), never hides a share."""
        items = [_claim_item(provider, share_id, attempt_key)]
        if share_id.isascii() and share_id.isdigit():
            items.append({"id": {"S": _newest_key(provider)}, "share_id": {"N": share_id}})
        puts = {self.table: [{"PutRequest": {"Item": item}} for item in items]}
        _until_processed(lambda pending: self.dynamodb.batch_write_item(RequestItems=pending)["UnprocessedItems"], puts)

    def _get_each(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """The items of these keys that exist, by key, read in consistent batches (the keys must be distinct:
        DynamoDB refuses a batch that names one twice)."""
        found: dict[str, dict[str, Any]] = {}
        for first in range(0, len(keys), MAX_BATCH_GET):
            found |= self._get_batch(keys[first : first + MAX_BATCH_GET])
        return found

    def _get_batch(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}

        def read(pending: dict[str, Any]) -> dict[str, Any]:
            answer = self.dynamodb.batch_get_item(RequestItems=pending)
            found.update((item["id"]["S"], item) for item in answer["Responses"].get(self.table, []))
            return dict(answer["UnprocessedKeys"])

        _until_processed(read, {self.table: {"Keys": [{"id": {"S": key}} for key in keys], "ConsistentRead": True}})
        return found

    def _forget(self, attempt_key: str) -> None:
        """The provider's answer shows the attempt made nothing: a retry need not reconcile."""
        self.dynamodb.delete_item(TableName=self.table, Key={"id": {"S": attempt_key}})


def _until_processed(send: Callable[[dict[str, Any]], dict[str, Any]], pending: dict[str, Any]) -> None:
    """Send a batch, then what the table left unprocessed (throughput exceeded) after each pause, then give up."""
    for pause_s in (*BATCH_PAUSES_S, None):
        pending = send(pending)
        if not pending:
            return
        if pause_s is None:
            raise StorageUnavailable("the idempotency table kept refusing part of a batch (throughput exceeded)")
        time.sleep(pause_s)


def _digest(request_id: str) -> str:
    return hashlib.sha256(request_id.encode()).hexdigest()


def _request_digest(request: RequestModel) -> str:
    """The body as the model reads it, so that the provider's field names and their snake_case twins agree."""
    return _digest(request.model_dump_json())


def _check_same_request(item: dict[str, Any], request: RequestModel) -> None:
    """Powertools forgets a failed call, so after an unknown outcome only the attempt record knows the first body
    (records written before it was kept have none)."""
    recorded = item.get("request", {}).get("S")
    if recorded is not None and recorded != _request_digest(request):
        raise IdempotencyConflict("this Idempotency-Key was used with another body")


def _attempt(item: dict[str, Any]) -> Attempt:
    return Attempt(
        started_at=datetime.fromisoformat(item["started_at"]["S"]),
        before=json.loads(item["before"]["S"]),
        newest_share_id=int(item["newest_share_id"]["N"]),
    )


def _newest_key(provider: str) -> str:
    return f"newest#{provider}"


def _claim_key(provider: str, share_id: str) -> str:
    return f"claim#{provider}#{share_id}"


def _claim_item(provider: str, share_id: str, attempt_key: str) -> dict[str, Any]:
    return {
        "id": {"S": _claim_key(provider, share_id)},
        "attempt": {"S": attempt_key},
        "expiration": {"N": str(int(time.time()) + CLAIM_LIFETIME_S)},
    }
