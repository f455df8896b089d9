"""Provider I/O: the small interface provider modules talk through, and its HTTP implementation."""

from __future__ import annotations

import io
import itertools
import json
import logging
import re
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
from aws_xray_sdk.core import xray_recorder
from aws_xray_sdk.core.models import http as traced
from requests.adapters import DEFAULT_POOLSIZE, HTTPAdapter
from urllib3.exceptions import ProtocolError, ReadTimeoutError
from urllib3.fields import RequestField
from urllib3.filepost import choose_boundary
from urllib3.util.retry import Retry

from sharelink.deadline import DEADLINE
from sharelink.errors import NoTimeLeft, ProviderTimeout, ProviderUnreachable

# By default only calls that are safe to repeat are retried on read errors and 5xx. A POST that timed out may
# already have created a share, so it is never resent; a refused connection never reached the provider,
# so it is retried whatever the method (urllib3 counts it under `connect`).
SAFE_TO_REPEAT = frozenset({"GET", "PUT", "DELETE", "HEAD"})
RETRY_STATUSES = frozenset({500, 502, 503, 504})
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
class RetryPolicy:
    """Which calls a transport resends after a read timeout, a dropped connection or one of `statuses`, and how long
    it waits between tries (urllib3's backoff_factor). A refused connection is retried whatever the method."""

    methods: frozenset[str] = SAFE_TO_REPEAT
    statuses: frozenset[int] = RETRY_STATUSES
    backoff_factor: float = 0.1
    backoff_jitter: float = 0.0


@dataclass(frozen=True)
class FilePart:
    """A form field of `size` bytes with a file name, produced afresh by `chunks()` each time the body is sent."""

    name: str
    filename: str
    size: int
    chunks: Callable[[], Generator[bytes]]


@dataclass(frozen=True)
class Multipart:
    """A multipart/form-data body: text fields in order, then one file part streamed, never held whole."""

    fields: Sequence[tuple[str, str]]
    file: FilePart


class MultipartBody:
    """A Multipart as the file-like body requests streams: its length known up front (so Content-Length, not chunked
    encoding), read a block at a time, and rewound by urllib3 before a retry (the file part is then produced again)."""

    def __init__(self, form: Multipart) -> None:
        boundary = choose_boundary()
        self.content_type = f"multipart/form-data; boundary={boundary}"
        fields = b"".join(_part_head(boundary, name) + value.encode() + b"\r\n" for name, value in form.fields)
        self._head = fields + _part_head(boundary, form.file.name, form.file.filename)
        self._tail = f"\r\n--{boundary}--\r\n".encode()
        self._file = form.file
        self._chunks: Generator[bytes] | None = None
        self.seek(0)

    def __len__(self) -> int:
        return len(self._head) + self._file.size + len(self._tail)

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if (offset, whence) != (0, io.SEEK_SET):
            raise io.UnsupportedOperation("a multipart body only rewinds to its start")
        self.close()
        self._chunks = self._file.chunks()
        self._pieces = itertools.chain((self._head,), self._chunks, (self._tail,))
        self._pending = bytearray()
        self._position = 0
        return 0

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._pending) < size:
            piece = next(self._pieces, None)
            if piece is None:
                break
            self._pending += piece
        taken = bytes(self._pending if size < 0 else self._pending[:size])
        del self._pending[: len(taken)]
        self._position += len(taken)
        return taken

    def close(self) -> None:
        """Let go of the file part's source (an S3 stream) when the body was not read to its end."""
        if self._chunks is not None:
            self._chunks.close()


def _part_head(boundary: str, name: str, filename: str | None = None) -> bytes:
    """A part's boundary line and headers, its name and file name escaped as urllib3 (and browsers) escape them."""
    part = RequestField(name=name, data=b"", filename=filename)
    part.make_multipart(content_type="application/octet-stream" if filename is not None else None)
    return f"--{boundary}\r\n{part.render_headers()}".encode()


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
        form: Multipart | None = None,
    ) -> Reply: ...


class HttpTransport:
    """requests with urllib3's Retry, mapping transport failures to typed errors. A JSON `body` or a streamed
    multipart `form` is sent."""

    def __init__(
        self,
        base_url: str,
        *,
        provider: str,
        timeout_s: float,
        retries: int = 2,
        retry_policy: RetryPolicy = RetryPolicy(),
        pool_size: int = DEFAULT_POOLSIZE,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.provider = provider
        self.timeout_s = timeout_s
        retry = DeadlineRetry(
            attempt_s=timeout_s,
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            backoff_factor=retry_policy.backoff_factor,
            backoff_jitter=retry_policy.backoff_jitter,
            status_forcelist=retry_policy.statuses,
            allowed_methods=retry_policy.methods,
            raise_on_status=False,
            respect_retry_after_header=False,
        )
        self.host = urlsplit(self.base_url).hostname or self.base_url
        self.session = requests.Session()
        # Not each call's look for proxy variables and ~/.netrc: the provider is reached directly, as from Lambda.
        self.session.trust_env = False
        self.session.mount(self.base_url, HTTPAdapter(max_retries=retry, pool_maxsize=pool_size))

    def send(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        form: Multipart | None = None,
    ) -> Reply:
        left = DEADLINE.left()
        if left < MIN_CALL_S:
            raise NoTimeLeft(f"no time left to call {self.provider} before the deadline", provider=self.provider)
        stream = MultipartBody(form) if form is not None else None
        headers = dict(headers or {}) | ({"Content-Type": stream.content_type} if stream is not None else {})
        try:
            return self._request(
                method, path, min(self.timeout_s, left), headers=headers, params=params, json=body, data=stream
            )
        finally:
            if stream is not None:
                stream.close()

    def _request(self, method: str, path: str, timeout_s: float, **sent: Any) -> Reply:
        """One X-Ray subsegment per provider call, as X-Ray's requests patch makes, without patching requests for
        the whole process or sending the trace id to the provider. The URL holds no query string (no token)."""
        url = self.base_url + path
        with xray_recorder.in_subsegment(self.host, namespace="remote") as call:
            call.put_http_meta(traced.METHOD, method)
            call.put_http_meta(traced.URL, url)
            reply = self._send(method, url, timeout_s, **sent)
            call.put_http_meta(traced.STATUS, reply.status)
            return reply

    def _send(self, method: str, url: str, timeout_s: float, **sent: Any) -> Reply:
        try:
            response = self.session.request(method, url, timeout=timeout_s, **sent)
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
