"""What every provider module offers, so handlers and the events code treat providers alike."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, model_validator

from sharelink.share import Share
from sharelink.tokens import TokenSource
from sharelink.transport import Transport
from sharelink.validation import one_spelling


class RequestModel(BaseModel):
    """Request bodies: snake_case names, the provider's own names accepted too, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _one_spelling(cls, data: Any) -> Any:
        return one_spelling(cls, data)


@dataclass(frozen=True)
class Attempt:
    """An earlier attempt of the same create: when it started, what the provider noted before it was sent, and the
    newest numeric share id made here before it (sharelink.attempts)."""

    started_at: datetime
    before: dict[str, Any]
    newest_share_id: int


class ShareProvider[Request: RequestModel](Protocol):
    name: ClassVar[str]
    create_request: ClassVar[type[RequestModel]]

    def create_share(self, request: Request) -> Share:
        """Create (or, where the provider works that way, update) the share the request describes."""
        ...

    def before_create(self, request: Request) -> dict[str, Any]:
        """What find_created will need to recognize this attempt's share (for example the link it replaces)."""
        ...

    def find_created(self, request: Request, attempt: Attempt) -> list[Share]:
        """Shares that an earlier attempt of the request, whose outcome is unknown, may have made."""
        ...


class ProviderClient:
    """What every provider module's client holds: the way to the provider, its tokens, a clock."""

    def __init__(
        self, transport: Transport, tokens: TokenSource, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.transport = transport
        self.tokens = tokens
        self.clock = clock
