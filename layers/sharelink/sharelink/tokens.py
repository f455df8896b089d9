"""Provider access tokens, read from the provider's secret in Secrets Manager."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from aws_lambda_powertools.utilities import parameters

from sharelink.errors import ProviderAuthFailed, TokenRejected

SECRET_CACHE_SECONDS = 300


class TokenSource(Protocol):
    def access_token(self, *, fresh: bool = False) -> str:
        """The current access token; `fresh` bypasses any cache."""
        ...


class SecretTokens:
    """Reads `access_token` from a JSON secret, cached in memory by Powertools parameters."""

    def __init__(self, secret_id: str, *, provider: str) -> None:
        self.secret_id = secret_id
        self.provider = provider

    def access_token(self, *, fresh: bool = False) -> str:
        secret = parameters.get_secret(
            self.secret_id, transform="json", max_age=SECRET_CACHE_SECONDS, force_fetch=fresh
        )
        token = secret.get("access_token") if isinstance(secret, dict) else None
        if not token:
            raise ProviderAuthFailed(f"the {self.provider} secret holds no access token", provider=self.provider)
        return str(token)


def with_token[T](tokens: TokenSource, call: Callable[[str], T]) -> T:
    """Run `call` with the cached token; when the provider rejects it, re-read the secret once and retry once."""
    try:
        return call(tokens.access_token())
    except TokenRejected:
        pass
    try:
        return call(tokens.access_token(fresh=True))
    except TokenRejected as exc:
        raise ProviderAuthFailed(
            f"{exc.provider} rejected the stored access token, also after re-reading the secret: {exc.message}",
            provider=exc.provider,
            provider_code=exc.provider_code,
        ) from exc
