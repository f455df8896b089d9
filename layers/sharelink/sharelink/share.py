"""The share, as every success returns it (DESIGN.md, "The share")."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, field_serializer

# Text a provider sends back is shortened to this: an answer must fit where it is remembered (a DynamoDB item
# holds 400 KB) and in a result object.
MAX_PROVIDER_TEXT = 1024


def bounded_text(text: object) -> str | None:
    """A provider's text (a file name), shortened with an ellipsis past MAX_PROVIDER_TEXT characters."""
    if text is None:
        return None
    value = str(text)
    return value if len(value) <= MAX_PROVIDER_TEXT else value[: MAX_PROVIDER_TEXT - 1] + "…"


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Share(BaseModel):
    model_config = ConfigDict(frozen=True)

    provider: str
    share_id: str
    share_key: str
    url: str
    password: str | None = None
    expires_at: datetime | None = None
    permission: str | None = None
    name: str | None = None
    file_ids: list[str]
    provider_request_id: str | None = None

    @field_serializer("expires_at")
    def _utc(self, moment: datetime | None) -> str | None:
        return rfc3339(moment) if moment else None
