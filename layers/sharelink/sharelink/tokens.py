"""Provider access tokens: read from the provider's secret (sharelink.secrets), renewed by the tokens function."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sharelink.errors import ProviderAuthFailed, TokenRejected
from sharelink.observability import metrics
from sharelink.renewal import RenewalRequests
from sharelink.secrets import SecretReader


@dataclass(frozen=True)
class IssuedToken:
    """What a provider's token endpoint answers."""

    access_token: str
    expires_at: datetime
    refresh_token: str | None = None


class TokenSource(Protocol):
    def access_token(self, *, fresh: bool = False) -> str:
        """The current access token; `fresh` bypasses any cache."""
        ...

    def rejected(self, token: str) -> None:
        """The provider still rejects `token` after a fresh read of the secret."""
        ...


def expires_at(secret: dict[str, Any]) -> datetime | None:
    """The secret's `expires_at` (RFC 3339), or None when it has none or cannot be read."""
    try:
        moment = datetime.fromisoformat(str(secret.get("expires_at") or ""))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class SecretTokens:
    """Reads `access_token` from a JSON secret, through the reader's cache.

    A cached token whose `expires_at` has passed is read again. Only when the secret holds no token at all
    (first use, before the tokens function ran) does `first_use` get one from the provider.
    """

    def __init__(
        self,
        secret_id: str,
        secrets: SecretReader,
        *,
        provider: str,
        first_use: Callable[[dict[str, Any]], str] | None = None,
        renewal: RenewalRequests | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.secret_id = secret_id
        self.secrets = secrets
        self.provider = provider
        self.first_use = first_use
        self.renewal = renewal
        self.clock = clock
        self.minted: str | None = None

    def access_token(self, *, fresh: bool = False) -> str:
        secret = self._read(fresh)
        deadline = expires_at(secret)
        if not fresh and deadline is not None and deadline <= self.clock():
            secret = self._read(fresh=True)
        if secret.get("access_token"):
            return str(secret["access_token"])
        if self.first_use is None:
            raise ProviderAuthFailed(
                f"the {self.provider} secret holds no access token: authorize first (see README)",
                provider=self.provider,
            )
        if fresh or self.minted is None:
            self.minted = self.first_use(secret)
        return self.minted

    def rejected(self, token: str) -> None:
        """Not left to expire on its own: count it (alarm ProviderAuthFailed) and ask the tokens function to renew."""
        metrics.add_metric(name="ProviderAuthFailed", unit="Count", value=1)
        if self.renewal is not None and token != self.minted:
            self.renewal.ask(self.provider, token)

    def _read(self, fresh: bool) -> dict[str, Any]:
        return self.secrets.read(self.secret_id, fresh=fresh)


def with_token[T](tokens: TokenSource, call: Callable[[str], T]) -> T:
    """Run `call` with the cached token; when the provider rejects it, re-read the secret once and retry once."""
    try:
        return call(tokens.access_token())
    except TokenRejected:
        pass
    token = tokens.access_token(fresh=True)
    try:
        return call(token)
    except TokenRejected as rejected:
        tokens.rejected(token)
        reason = f"{rejected.provider} rejected the stored access token, also after re-reading the secret"
        raise ProviderAuthFailed.refused(rejected, reason) from None
