"""Where the outcome of a storage request or an upload goes: a result object in the bucket and an EventBridge event."""

from __future__ import annotations

import json
from typing import Any

from sharelink.observability import logger, metrics

EVENT_SOURCE = "sharelink"


class Results:
    def __init__(self, s3: Any, events: Any, event_bus: str = "default") -> None:
        self.s3 = s3
        self.events = events
        self.event_bus = event_bus

    def publish(self, bucket: str, key: str, result: dict[str, Any]) -> None:
        """Write `result` at `key` and put it as the detail of `Share Created` or `Share Rejected`; publishing the
        same result again (a redelivery, a replay) writes the same again."""
        document = json.dumps(result, ensure_ascii=False)
        self.s3.put_object(Bucket=bucket, Key=key, Body=document.encode(), ContentType="application/json")
        created = result["status"] == "created"
        entry = {
            "Source": EVENT_SOURCE,
            "DetailType": "Share Created" if created else "Share Rejected",
            "Detail": document,
            "EventBusName": self.event_bus,
        }
        answer = self.events.put_events(Entries=[entry])
        if answer.get("FailedEntryCount"):
            raise RuntimeError(f"EventBridge refused the event: {answer['Entries']}")
        metrics.add_metric(name="SharesCreated" if created else "RequestsRejected", unit="Count", value=1)
        logger.info("outcome published", extra={"key": key, "status": result["status"]})
