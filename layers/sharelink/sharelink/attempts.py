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
Every share a request ends with is claimed (one item per share id), so two requests never answer the same share.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sharelink.errors import AttemptUnsettled, OutcomeUnknown, SharelinkError
from sharelink.providers.base import Attempt, RequestModel, ShareProvider
from sharelink.share import Share

ONE_DAY = 24 * 3600
# How long after an attempt started a provider may still act on it (its own gateway's timeout, presumably).
DEFAULT_SETTLE_S = 60
# Claims outlive any retry of the request that made the share (Powertools remembers answers for a day).
CLAIM_LIFETIME_S = 30 * ONE_DAY


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
        earlier = self._earlier_attempt(attempt_key)
        if earlier is not None:
            found = self._adopt(provider, provider.find_created(request, earlier), attempt_key)
            if found is not None:
                return found
            self._check_settled(earlier)
        self._record_attempt(attempt_key, provider, request)
        try:
            share = provider.create_share(request)
        except SharelinkError as error:
            if not error.may_have_acted:
                self._forget(attempt_key)
            raise
        self._claim(provider.name, share.share_id, attempt_key, only_if_free=False)
        self._remember_newest(provider.name, share.share_id)
        return share

    def _check_settled(self, earlier: Attempt) -> None:
        unsettled = (earlier.started_at + self.settle - self.clock()).total_seconds()
        if unsettled > 0:
            raise AttemptUnsettled(
                "an earlier attempt of this request timed out and the provider may still be making its share: "
                f"retry in {math.ceil(unsettled)} s",
                retry_after=math.ceil(unsettled),
            )

    def _adopt(self, provider: ShareProvider, candidates: list[Share], attempt_key: str) -> Share | None:
        unclaimed = [
            share for share in candidates if self._claimed_by(provider.name, share.share_id) in (None, attempt_key)
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
        self._claim(provider.name, share.share_id, attempt_key, only_if_free=True)
        return share

    def _earlier_attempt(self, attempt_key: str) -> Attempt | None:
        item = self._get(attempt_key)
        if item is None:
            return None
        return Attempt(
            started_at=datetime.fromisoformat(item["started_at"]["S"]),
            before=json.loads(item["before"]["S"]),
            newest_share_id=int(item["newest_share_id"]["N"]),
        )

    def _record_attempt(self, attempt_key: str, provider: ShareProvider, request: RequestModel) -> None:
        newest = self._get(f"newest#{provider.name}")
        self._put(
            {
                "id": {"S": attempt_key},
                "started_at": {"S": self.clock().isoformat()},
                "before": {"S": json.dumps(provider.before_create(request))},
                "newest_share_id": {"N": newest["share_id"]["N"] if newest else "0"},
                "expiration": {"N": str(int(time.time()) + ONE_DAY)},
            }
        )

    def _claimed_by(self, provider: str, share_id: str) -> str | None:
        item = self._get(f"claim#{provider}#{share_id}")
        return item["attempt"]["S"] if item else None

    def _claim(self, provider: str, share_id: str, attempt_key: str, *, only_if_free: bool) -> None:
        item = {
            "id": {"S": f"claim#{provider}#{share_id}"},
            "attempt": {"S": attempt_key},
            "expiration": {"N": str(int(time.time()) + CLAIM_LIFETIME_S)},
        }
        condition = {"ConditionExpression": "attribute_not_exists(id) OR attempt = :mine"} if only_if_free else {}
        values = {"ExpressionAttributeValues": {":mine": {"S": attempt_key}}} if only_if_free else {}
        try:
            self.dynamodb.put_item(TableName=self.table, Item=item, **condition, **values)
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            raise OutcomeUnknown(
                f"the {provider} share {share_id} that matches this request was just claimed by another request",
                provider=provider,
            ) from None

    def _remember_newest(self, provider: str, share_id: str) -> None:
        """The highest numeric share id made here: shares at or below it existed before any later attempt."""
        if not share_id.isascii() or not share_id.isdigit():
            return
        with contextlib.suppress(self.dynamodb.exceptions.ConditionalCheckFailedException):  # a newer one is known
            self.dynamodb.update_item(
                TableName=self.table,
                Key={"id": {"S": f"newest#{provider}"}},
                UpdateExpression="SET share_id = :id",
                ConditionExpression="attribute_not_exists(share_id) OR share_id < :id",
                ExpressionAttributeValues={":id": {"N": share_id}},
            )

    def _get(self, key: str) -> dict[str, Any] | None:
        answer = self.dynamodb.get_item(TableName=self.table, Key={"id": {"S": key}}, ConsistentRead=True)
        item: dict[str, Any] | None = answer.get("Item")
        return item

    def _forget(self, attempt_key: str) -> None:
        """The provider's answer shows the attempt made nothing: a retry need not reconcile."""
        self.dynamodb.delete_item(TableName=self.table, Key={"id": {"S": attempt_key}})

    def _put(self, item: dict[str, Any]) -> None:
        self.dynamodb.put_item(TableName=self.table, Item=item)


def _digest(request_id: str) -> str:
    return hashlib.sha256(request_id.encode()).hexdigest()
