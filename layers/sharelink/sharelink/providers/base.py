"""What every provider module offers, so handlers and the events code treat providers alike."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

from sharelink.share import Share
from sharelink.tokens import TokenSource
from sharelink.transport import Transport


class RequestModel(BaseModel):
    """Request bodies: snake_case names, the provider's own names accepted too, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)


class ShareProvider[Request: RequestModel](Protocol):
    name: ClassVar[str]
    create_request: ClassVar[type[RequestModel]]

    def create_share(self, request: Request) -> Share:
        """Create (or, where the provider works that way, update) the share the request describes."""
        ...


class ProviderClient:
    """What every provider module's client holds: the way to the provider, its tokens, a clock."""

    def __init__(
        self, transport: Transport, tokens: TokenSource, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.transport = transport
        self.tokens = tokens
        self.clock = clock
