"""The tokens function's work: renew each provider's token before it expires, and write the secret back."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Protocol

from aws_lambda_powertools.utilities.typing import LambdaContext

from sharelink.aws import Session
from sharelink.deadline import DEADLINE
from sharelink.errors import SharelinkError
from sharelink.observability import logger, metrics
from sharelink.renewal import fingerprint
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
    def from_env(cls, renewers: dict[str, Renewer], session: Session) -> TokenRefresher:
        """`renewers` maps an environment variable holding a secret id to the provider that renews it."""
        return cls(
            {os.environ[variable]: renewer for variable, renewer in renewers.items()}, session.client("secretsmanager")
        )

    def handle(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        """A scheduled run, or a batch of renewal requests from the provider functions (sharelink.renewal)."""
        with DEADLINE.running(context.get_remaining_time_in_millis()):
            return self._handle(event)

    def _handle(self, event: dict[str, Any]) -> dict[str, Any]:
        if "Records" not in event:
            return self.run()
        asked = {json.loads(record["body"])["provider"]: json.loads(record["body"]) for record in event["Records"]}
        outcomes = {name: self._renew_rejected(request["rejected"], name) for name, request in asked.items()}
        logger.info("renewal requests handled", extra={"outcomes": outcomes})
        # A renewal that failed raised the alarm; retrying it now would only knock on the provider again.
        return {"batchItemFailures": []}

    def run(self) -> dict[str, str]:
        """Each provider's outcome: "renewed", "fresh" (nothing to do) or "failed" (the old secret stays)."""
        return {renewer.name: self._renew(secret_id, renewer) for secret_id, renewer in self.secrets.items()}

    def _renew_rejected(self, rejected: str, provider: str) -> str:
        """Renew now, unless the stored token is no longer the rejected one (another request already renewed it)."""
        secret_id, renewer = next((key, value) for key, value in self.secrets.items() if value.name == provider)
        secret = self._read(secret_id)
        if fingerprint(str(secret.get("access_token") or "")) != rejected:
            return "already renewed"
        return self._renew(secret_id, renewer, secret, force=True)

    def _renew(
        self, secret_id: str, renewer: Renewer, secret: dict[str, Any] | None = None, *, force: bool = False
    ) -> str:
        secret = secret if secret is not None else self._read(secret_id)
        deadline = expires_at(secret)
        fresh = secret.get("access_token") and deadline and deadline - self.clock() > renewer.renew_before
        if fresh and not force:
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

    def _read(self, secret_id: str) -> dict[str, Any]:
        secret: dict[str, Any] = json.loads(self.client.get_secret_value(SecretId=secret_id)["SecretString"])
        return secret
