"""The tokens function's work: renew each provider's token before it expires, and write the secret back."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Protocol

import boto3

from sharelink.errors import SharelinkError
from sharelink.observability import logger, metrics
from sharelink.tokens import expires_at


class Renewer(Protocol):
    name: ClassVar[str]
    renew_before: ClassVar[timedelta]

    def renew_secret(self, secret: dict[str, Any]) -> dict[str, Any]:
        """The secret with a new token; raises a typed error and changes nothing when the provider refuses."""
        ...


class TokenRefresher:
    """The single writer of the provider secrets."""

    def __init__(
        self,
        secrets: dict[str, Renewer],
        secrets_client: Any,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.secrets = secrets
        self.client = secrets_client
        self.clock = clock

    @classmethod
    def from_env(cls, renewers: dict[str, Renewer], session: boto3.Session) -> TokenRefresher:
        """`renewers` maps an environment variable holding a secret id to the provider that renews it."""
        return cls(
            {os.environ[variable]: renewer for variable, renewer in renewers.items()}, session.client("secretsmanager")
        )

    def run(self) -> dict[str, str]:
        """Each provider's outcome: "renewed", "fresh" (nothing to do) or "failed" (the old secret stays)."""
        return {renewer.name: self._renew(secret_id, renewer) for secret_id, renewer in self.secrets.items()}

    def _renew(self, secret_id: str, renewer: Renewer) -> str:
        secret = json.loads(self.client.get_secret_value(SecretId=secret_id)["SecretString"])
        deadline = expires_at(secret)
        if secret.get("access_token") and deadline and deadline - self.clock() > renewer.renew_before:
            logger.info("token still fresh", extra={"provider": renewer.name, "expires_at": secret["expires_at"]})
            return "fresh"
        try:
            renewed = renewer.renew_secret(secret)
        except SharelinkError as error:
            logger.error(
                "token renewal failed; the stored token stays",
                extra={"provider": renewer.name, "provider_code": error.provider_code, "reason": error.message},
            )
            metrics.add_metric(name="TokenRenewalFailed", unit="Count", value=1)
            return "failed"
        self.client.put_secret_value(SecretId=secret_id, SecretString=json.dumps(renewed))
        logger.info("token renewed", extra={"provider": renewer.name, "expires_at": renewed["expires_at"]})
        metrics.add_metric(name="TokenRenewed", unit="Count", value=1)
        return "renewed"
