"""Reading a provider's secret: through the AWS Parameters and Secrets Lambda Extension where the function has its
layer (no AWS SDK on the request path), else from Secrets Manager through Powertools parameters."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import quote

import requests

from sharelink.aws import Session

# The extension's defaults ("Use Secrets Manager secrets in Lambda functions", AWS Lambda Developer Guide).
EXTENSION_PORT_VARIABLE = "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"
DEFAULT_TTL_S = 300
READ_TIMEOUT_S = 5


class SecretUnreadable(Exception):
    """The secret could not be read (the extension or Secrets Manager refused or failed)."""


class SecretReader(Protocol):
    def read(self, secret_id: str, *, fresh: bool = False) -> dict[str, Any]:
        """The secret's JSON object; `fresh` reads Secrets Manager itself, bypassing every cache."""
        ...

    def clear_cache(self) -> None: ...


def as_object(secret_string: str | None) -> dict[str, Any]:
    try:
        value = json.loads(secret_string or "{}")
    except ValueError:
        raise SecretUnreadable("the secret is not a JSON object") from None
    return value if isinstance(value, dict) else {}


class ManagerSecrets:
    """GetSecretValue through Powertools parameters, cached in memory for `ttl_s`."""

    def __init__(self, session: Session, ttl_s: float = DEFAULT_TTL_S) -> None:
        self.session = session
        self.ttl_s = ttl_s
        self._provider: Any = None

    def read(self, secret_id: str, *, fresh: bool = False) -> dict[str, Any]:
        from aws_lambda_powertools.utilities.parameters import GetParameterError  # imports boto3

        try:
            secret = self.provider.get(secret_id, max_age=int(self.ttl_s), force_fetch=fresh)
        except GetParameterError as error:
            raise SecretUnreadable(str(error)) from None
        return as_object(secret if isinstance(secret, str) else None)

    @property
    def provider(self) -> Any:
        if self._provider is None:
            from aws_lambda_powertools.utilities.parameters import SecretsProvider

            self._provider = SecretsProvider(boto3_session=self.session.boto3)
        return self._provider

    def clear_cache(self) -> None:
        if self._provider is not None:
            self._provider.clear_cache()


class ExtensionSecrets:
    """GET localhost:{port}/secretsmanager/get with the session token, as AWS documents the extension, each answer
    then held in memory for the extension's own TTL (SECRETS_MANAGER_TTL): a warm invocation makes no call at all.
    The extension has no documented way to skip its cache, so a fresh read goes to Secrets Manager itself, and that
    value is the one held: the extension's copy, maybe older, is not asked for again before it has expired."""

    def __init__(
        self,
        port: int,
        session_token: str,
        direct: SecretReader,
        ttl_s: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = f"http://localhost:{port}/secretsmanager/get?secretId="
        self.headers = {"X-Aws-Parameters-Secrets-Token": session_token}
        self.direct = direct
        self.ttl_s = ttl_s
        self.clock = clock
        self.http = requests.Session()
        self.held: dict[str, tuple[float, dict[str, Any]]] = {}

    def read(self, secret_id: str, *, fresh: bool = False) -> dict[str, Any]:
        until, held = self.held.get(secret_id, (0.0, {}))
        if not fresh and until > self.clock():
            return held
        secret = self.direct.read(secret_id, fresh=True) if fresh else self._from_extension(secret_id)
        self.held[secret_id] = (self.clock() + self.ttl_s, secret)
        return secret

    def _from_extension(self, secret_id: str) -> dict[str, Any]:
        try:
            answer = self.http.get(self.url + quote(secret_id, safe=""), headers=self.headers, timeout=READ_TIMEOUT_S)
        except requests.RequestException as error:
            raise SecretUnreadable(f"the secrets extension could not be reached: {type(error).__name__}") from None
        if answer.status_code != 200:
            raise SecretUnreadable(f"the secrets extension answered {answer.status_code}: {answer.text[:200]}")
        return as_object(answer.json().get("SecretString"))

    def clear_cache(self) -> None:
        self.held.clear()


def reader_from_env(session: Session) -> SecretReader:
    """The extension where the template gives the function its layer (and so its port), Secrets Manager otherwise."""
    ttl_s = float(os.environ.get("SECRETS_MANAGER_TTL") or DEFAULT_TTL_S)
    direct = ManagerSecrets(session, ttl_s)
    port = os.environ.get(EXTENSION_PORT_VARIABLE)
    if not port:
        return direct
    return ExtensionSecrets(int(port), os.environ.get("AWS_SESSION_TOKEN", ""), direct, ttl_s)
