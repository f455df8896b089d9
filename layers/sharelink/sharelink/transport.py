"""Provider I/O: the small interface provider modules talk through, and its HTTP implementation."""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ProtocolError, ReadTimeoutError
from urllib3.util.retry import Retry

from sharelink.errors import ProviderTimeout, ProviderUnreachable

# Only calls that are safe to repeat are retried on read errors and 5xx. A POST that timed out may
# already have created a share, so it is never resent; a refused connection never reached the provider,
# so it is retried whatever the method (urllib3 counts it under `connect`).
SAFE_TO_REPEAT = frozenset({"GET", "PUT", "DELETE", "HEAD"})
# Time kept back from the invocation's deadline to answer (API Gateway, the result object, the batch report).
ANSWER_RESERVE_S = 1.0
# A call needs at least this long to mean anything; with less left, it is not sent at all.
MIN_CALL_S = 0.5
TOKEN_IN_QUERY = re.compile(r"((?:access_token|refresh_token|app_key|code)=)[^&\s'\"]+")


class _RedactTokens(logging.Filter):
    """urllib3 logs retried URLs, and KDocs puts tokens and the app key in query strings."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = TOKEN_IN_QUERY.sub(r"\1***", record.getMessage()), None
        return True


for _name in ("urllib3.connectionpool", "urllib3.util.retry"):
    logging.getLogger(_name).addFilter(_RedactTokens())


class Deadline:
    """When the current invocation must have answered. Lambda runs one invocation at a time per process, so one
    per process: set for the length of each invocation from its context, read by every provider call; outside an
    invocation there is none."""

    def __init__(self) -> None:
        self._at = math.inf

    @contextmanager
    def running(self, remaining_ms: int) -> Iterator[None]:
        self._at = time.monotonic() + remaining_ms / 1000 - ANSWER_RESERVE_S
        try:
            yield
        finally:
            self._at = math.inf

    def left(self) -> float:
        return self._at - time.monotonic()


DEADLINE = Deadline()


class DeadlineRetry(Retry):
    """urllib3's Retry that gives up when another whole attempt would not end before the deadline."""

    def __init__(self, *args: Any, attempt_s: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.attempt_s = attempt_s

    def new(self, **kw: Any) -> DeadlineRetry:
        kw.setdefault("attempt_s", self.attempt_s)
        return super().new(**kw)

    def is_exhausted(self) -> bool:
        return super().is_exhausted() or DEADLINE.left() < self.attempt_s


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """The decoded JSON body, or None when the body is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class Transport(Protocol):
    """How a provider module reaches its provider."""

    def send(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> Reply: ...


class HttpTransport:
    """requests with urllib3's Retry, mapping transport failures to typed errors."""

    def __init__(self, base_url: str, *, provider: str, timeout_s: float, retries: int = 2) -> None:
        self.base_url = base_url.rstrip("/")
        self.provider = provider
        self.timeout_s = timeout_s
        retry = DeadlineRetry(
            attempt_s=timeout_s,
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            backoff_factor=0.1,
            status_forcelist=(500, 502, 503, 504),
            allowed_methods=SAFE_TO_REPEAT,
            raise_on_status=False,
            respect_retry_after_header=False,
        )
        self.session = requests.Session()
        self.session.mount(self.base_url, HTTPAdapter(max_retries=retry))

    def send(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> Reply:
        left = DEADLINE.left()
        if left < MIN_CALL_S:
            raise ProviderTimeout(f"no time left to call {self.provider} before the deadline", provider=self.provider)
        timeout_s = min(self.timeout_s, left)
        try:
            response = self.session.request(
                method,
                self.base_url + path,
                headers=dict(headers or {}),
                params=params,
                json=body,
                timeout=timeout_s,
            )
        # `from None`: requests' own messages carry the URL, and with it a token in the query string.
        except requests.Timeout:
            raise self._timeout(timeout_s) from None
        except requests.ConnectionError as exc:
            if _is_read_timeout(exc):
                raise self._timeout(timeout_s) from None
            if _was_dropped(exc):
                message = f"{self.provider} dropped the connection before answering"
                raise ProviderTimeout(message, provider=self.provider) from None
            raise ProviderUnreachable(f"{self.provider} could not be reached", provider=self.provider) from None
        return Reply(response.status_code, response.content, response.headers)

    def _timeout(self, timeout_s: float) -> ProviderTimeout:
        return ProviderTimeout(f"{self.provider} did not answer within {timeout_s:g} s", provider=self.provider)


def retry_after(headers: Mapping[str, str]) -> int:
    """Seconds from a Retry-After header, 1 when there is none usable."""
    value = headers.get("Retry-After", "")
    return int(value) if value.isdigit() else 1


def _was_dropped(exc: requests.ConnectionError) -> bool:
    """The request went out and the connection closed before an answer: the provider may have acted on it."""
    reason = exc.args[0] if exc.args else None
    return isinstance(reason, ProtocolError) or isinstance(getattr(reason, "reason", None), ProtocolError)


def _is_read_timeout(exc: requests.ConnectionError) -> bool:
    """requests reports read timeouts that used up the retries as a ConnectionError around MaxRetryError."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, ReadTimeoutError)
