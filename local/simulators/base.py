"""Plumbing shared by the provider simulators: a movable clock, a fault plan, request recording, the HTTP server.

A simulator subclasses SimServer and implements handle(). The base records every provider request, applies planned
faults and answers the control endpoints under /__sim/.

A fault plan names a kind and, optionally, the method and the path it is for (`{"kind": "timeout", "method": "POST",
"path": "/api/v1/share/create", "times": 2}`) and fields the JSON body must hold (`"body": {"shareName": "a"}`, so
that a fault meets one request whatever the order requests arrive in); the first planned fault that matches is taken.
What each kind does to the provider's state:
- timeout: waits `delay` seconds (3 by default), then handles the request: the provider did the work even though
  a client with a shorter timeout gave up and never learned the outcome.
- close_after: handles the request, then drops the connection without an answer: the work is done, unannounced.
- close: drops the connection before handling: nothing is done.
- http500, http429 (Retry-After: 7, or the fault's `retry_after`), non_json, truncated_json: answered instead of
  handling: nothing is done.
- Simulator kinds (expire_token, code) are described where they are added.

Recording keeps every provider request, whatever its bytes: a body is the parsed JSON, else its UTF-8 text, else
(bytes that are not UTF-8) the base64 of the bytes with `body_base64` set. A multipart/form-data body is the
exception, so that uploads do not pile up in memory: the handler gets the parsed Form (its parts with their bytes),
and the recording keeps a summary, {field name: value}, a field sent more than once a list of values, where a value
is the part's text when it has no file name, is UTF-8 and at most FORM_TEXT_LIMIT bytes long, else
{"filename", "size", "md5"} of its bytes. A multipart body that cannot be parsed is recorded as
{"multipart_error": why, "size": bytes} and handed to the handler as None. An answer holding text that UTF-8 cannot
carry (a lone surrogate, as the JSON escape "\\ud800" decodes to) is sent with JSON's \\u escapes instead.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self
from urllib.parse import parse_qsl, unquote, urlsplit

type Response = tuple[int, dict[str, str], bytes]

COMMON_FAULT_KINDS = frozenset({"timeout", "http500", "non_json", "truncated_json", "http429", "close", "close_after"})
CONTROL_PREFIX = "/__sim/"
FORM_TEXT_LIMIT = 64 * 1024
_AS_RECORDED: Any = object()  # answer()'s default payload: the recorded body


def json_response(status: int, document: Any, headers: dict[str, str] | None = None) -> Response:
    return status, {"Content-Type": "application/json", **(headers or {})}, _json_bytes(document)


def _json_bytes(document: Any) -> bytes:
    try:
        return json.dumps(document, ensure_ascii=False).encode()
    except UnicodeEncodeError:  # a lone surrogate: only a \u escape carries it
        return json.dumps(document).encode()


class SimClock:
    """Real time plus an offset; frozen, only advance() moves it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset = 0.0
        self._frozen_at: float | None = None

    def now(self) -> datetime:
        with self._lock:
            base = time.time() if self._frozen_at is None else self._frozen_at
            return datetime.fromtimestamp(base + self._offset, tz=UTC)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds

    def freeze(self) -> None:
        with self._lock:
            if self._frozen_at is None:
                self._frozen_at = time.time()

    def unfreeze(self) -> None:
        with self._lock:
            if self._frozen_at is not None:
                # Resume from the frozen instant instead of jumping over the time spent frozen.
                self._offset -= time.time() - self._frozen_at
                self._frozen_at = None

    def reset(self) -> None:
        with self._lock:
            self._offset, self._frozen_at = 0.0, None


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    body_base64: bool = False


@dataclass
class Fault:
    kind: str
    method: str | None
    path: str | None
    times: int
    options: dict[str, Any] = field(default_factory=dict)
    body: dict[str, Any] | None = None

    def matches(self, path: str, method: str | None, body: Any = None) -> bool:
        """Without a method (a test asking what is left for a path), a fault for any method matches."""
        return (
            self.path in (None, path)
            and (self.method is None or method in (None, self.method))
            and (self.body is None or _holds(body, self.body))
        )


def _holds(body: Any, fields: dict[str, Any]) -> bool:
    return isinstance(body, dict) and all(name in body and body[name] == value for name, value in fields.items())


class Faults:
    """Planned faults, taken in the order they were added by the first request whose method and path match."""

    def __init__(self, kinds: frozenset[str] = COMMON_FAULT_KINDS) -> None:
        self.kinds = kinds
        self._lock = threading.Lock()
        self._planned: list[Fault] = []

    def add(
        self,
        kind: str,
        *,
        method: str | None = None,
        path: str | None = None,
        body: dict[str, Any] | None = None,
        times: int = 1,
        **options: Any,
    ) -> None:
        if kind not in self.kinds:
            raise ValueError(f"unknown fault kind {kind!r}, expected one of {sorted(self.kinds)}")
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise ValueError("times must be a positive integer")
        for name, value in (("method", method), ("path", path)):
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{name} must be a string")
        if body is not None and not isinstance(body, dict):
            raise ValueError("body must be an object of the fields the request's body holds")
        with self._lock:
            self._planned.append(Fault(kind, method and method.upper(), path, times, options, body))

    def __len__(self) -> int:
        """How many planned faults are still to be taken."""
        with self._lock:
            return sum(fault.times for fault in self._planned)

    def take(self, path: str, method: str | None = None, body: Any = None) -> Fault | None:
        with self._lock:
            for fault in self._planned:
                if fault.matches(path, method, body):
                    fault.times -= 1
                    if fault.times == 0:
                        self._planned.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._planned.clear()


class Refusal(Exception):
    """A provider's failure answer (code and message), raised from wherever a handler finds the problem."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class CloseConnection(Exception):
    """Raised by a fault to drop the connection without any answer."""


class SimServer:
    """Subclasses implement handle() and may override envelope(), reset() and apply_fault() (for extra fault_kinds)."""

    fault_kinds: frozenset[str] = COMMON_FAULT_KINDS
    rate_limit_message = "too many requests"
    # Every simulator of this process, so a test can look for their secrets where none may be.
    instances: ClassVar[list[SimServer]] = []

    def __init__(self) -> None:
        SimServer.instances.append(self)
        self.clock = SimClock()
        self.faults = Faults(self.fault_kinds)
        self.requests: list[Recorded] = []
        # A provider that answers every call after `latency_s`; `max_in_flight` shows how many calls overlapped.
        self.latency_s = 0.0
        self.max_in_flight = 0
        self._in_flight = 0
        self._flight_lock = threading.Lock()
        self._lifecycle_lock = threading.Lock()
        self._httpd: _SimHTTPServer | None = None
        self._stop_timer: threading.Timer | None = None
        self._stopped = False

    def start(self, lifetime_s: float = 900, port: int = 0) -> Self:
        """Serve on 127.0.0.1:`port` (0: any free port) until stop() or for `lifetime_s` at most."""
        with self._lifecycle_lock:
            if self._httpd is not None:
                raise RuntimeError("a simulator starts only once")
            self._httpd = _SimHTTPServer(self, port)
            threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()
            self._stop_timer = threading.Timer(lifetime_s, self.stop)
            self._stop_timer.daemon = True
            self._stop_timer.start()
        return self

    def stop(self) -> None:
        with self._lifecycle_lock:
            if self._httpd is None or self._stopped:
                return
            self._stopped = True
            if self._stop_timer is not None:
                self._stop_timer.cancel()
            self._httpd.shutdown()
            self._httpd.server_close()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the simulator is not started")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def handle(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: Any) -> Response:
        raise NotImplementedError

    def secret_values(self) -> set[str]:
        """Credentials and tokens this simulator knows: none of them may appear in a log, answer or result."""
        return set()

    def reset(self) -> None:
        self.requests.clear()
        self.faults.clear()
        self.clock.reset()
        self.latency_s = 0.0
        self.max_in_flight = 0

    def envelope(self, code: int, message: str, data: Any = None) -> dict[str, Any]:
        return {"code": code, "message": message, "data": data}

    def answer(self, request: Recorded, payload: Any = _AS_RECORDED) -> Response:
        """Record the request and answer it; handle() gets `payload` when given (a parsed Form), else the body."""
        self.requests.append(request)
        with self._flight_lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            time.sleep(self.latency_s)
            fault = self.faults.take(request.path, request.method, request.body)
            if fault is not None and (response := self.apply_fault(fault)) is not None:
                return response
            body = request.body if payload is _AS_RECORDED else payload
            response = self.handle(request.method, request.path, request.query, request.headers, body)
            if fault is not None and fault.kind == "close_after":
                raise CloseConnection
            return response
        finally:
            with self._flight_lock:
                self._in_flight -= 1

    def apply_fault(self, fault: Fault) -> Response | None:
        """The answer a fault forces, or None to answer normally once the fault's side effect is done."""
        match fault.kind:
            case "timeout":
                time.sleep(float(fault.options.get("delay", 3.0)))
                return None
            case "http500":
                return json_response(500, {"error": "internal"})
            case "non_json":
                return 200, {"Content-Type": "text/html"}, b"<html>502 Bad Gateway</html>"
            case "truncated_json":
                return 200, {"Content-Type": "application/json"}, b'{"code": 0, "mess'
            case "http429":
                pause = {"Retry-After": str(fault.options.get("retry_after", 7))}
                return json_response(429, self.envelope(429, self.rate_limit_message), pause)
            case "close":
                raise CloseConnection
            case "close_after":
                return None
        raise ValueError(f"no answer for fault kind {fault.kind!r}")

    def control(self, method: str, path: str, body: Any) -> Response:
        match method, path.removeprefix(CONTROL_PREFIX):
            case "GET", "requests":
                return json_response(200, [asdict(request) for request in list(self.requests)])
            case "POST", "faults":
                return self._plan_fault(body)
            case "POST", "clock":
                seconds = body.get("advance") if isinstance(body, dict) else None
                if isinstance(seconds, bool) or not isinstance(seconds, int | float):
                    return json_response(400, {"error": "advance must be a number of seconds"})
                self.clock.advance(seconds)
                return json_response(200, {"now": self.clock.now().isoformat()})
            case "POST", "reset":
                self.reset()
                return 204, {}, b""
        return json_response(404, {"error": "unknown control endpoint"})

    def _plan_fault(self, body: Any) -> Response:
        if not isinstance(body, dict):
            return json_response(400, {"error": "expected a JSON object"})
        options = dict(body)
        try:
            self.faults.add(options.pop("kind", None), **options)
        except (TypeError, ValueError) as error:
            return json_response(400, {"error": str(error)})
        return 204, {}, b""


@dataclass
class FormPart:
    """One part of a multipart/form-data body."""

    name: str
    filename: str | None
    content_type: str | None
    data: bytes

    def text(self) -> str | None:
        """The part as text: None when it carries a file name or is not UTF-8."""
        if self.filename is not None:
            return None
        try:
            return self.data.decode()
        except UnicodeDecodeError:
            return None

    @cached_property
    def md5(self) -> str:
        return hashlib.md5(self.data, usedforsecurity=False).hexdigest()

    def summary(self) -> Any:
        text = self.text()
        if text is not None and len(self.data) <= FORM_TEXT_LIMIT:
            return text
        return {"filename": self.filename, "size": len(self.data), "md5": self.md5}


@dataclass
class Form:
    """A parsed multipart/form-data body: its parts in the order sent."""

    parts: list[FormPart]

    def summary(self) -> dict[str, Any]:
        recorded: dict[str, Any] = {}
        for part in self.parts:
            value = part.summary()
            if part.name not in recorded:
                recorded[part.name] = value
            elif isinstance(previous := recorded[part.name], _Repeated):
                previous.append(value)
            else:
                recorded[part.name] = _Repeated([previous, value])
        return {name: list(value) if isinstance(value, _Repeated) else value for name, value in recorded.items()}


class _Repeated(list[Any]):
    """The values of a field sent more than once (a plain list could be one field's own value)."""


_PARAM = re.compile(r';\s*([^\s=;]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))')


def _header_params(value: str) -> dict[str, str]:
    """The parameters of a header such as `form-data; name="a"; filename*=UTF-8''b%20c.txt`, names lower-cased."""
    params: dict[str, str] = {}
    for match in _PARAM.finditer(value):
        name, quoted, bare = match.group(1).lower(), match.group(2), match.group(3)
        text = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare.strip()
        if name.endswith("*"):  # RFC 5987: charset'language'percent-encoded
            charset, _, rest = text.partition("'")
            text = unquote(rest.partition("'")[2], encoding=charset or "utf-8", errors="replace")
            name = name[:-1]
        params[name] = text
    return params


def parse_multipart(raw: bytes, content_type: str) -> Form:
    """Parse a multipart/form-data body; ValueError when it is malformed."""
    boundary = _header_params(content_type).get("boundary")
    if not boundary:
        raise ValueError("multipart/form-data without a boundary")
    delimiter = b"--" + boundary.encode("latin-1")
    position = raw.find(delimiter)
    if position < 0:
        raise ValueError("the boundary does not occur in the body")
    parts: list[FormPart] = []
    while True:
        position += len(delimiter)
        if raw.startswith(b"--", position):
            return Form(parts)
        if not raw.startswith(b"\r\n", position):
            raise ValueError("a boundary line must end with CRLF")
        end = raw.find(b"\r\n" + delimiter, position)
        if end < 0:
            raise ValueError("the body ends before the closing boundary")
        parts.append(_parse_part(raw, position + 2, end))
        position = end + 2


def _parse_part(raw: bytes, start: int, end: int) -> FormPart:
    header_end = raw.find(b"\r\n\r\n", start, end)
    if header_end < 0:
        raise ValueError("a part has no blank line after its headers")
    headers: dict[str, str] = {}
    for line in raw[start:header_end].decode("utf-8", errors="replace").split("\r\n"):
        name, colon, value = line.partition(":")
        if not colon:
            raise ValueError(f"a part's header line has no colon: {line!r}")
        headers[name.strip().lower()] = value.strip()
    disposition = headers.get("content-disposition", "")
    if not disposition.lower().startswith("form-data"):
        raise ValueError("a part lacks Content-Disposition: form-data")
    params = _header_params(disposition)
    if "name" not in params:
        raise ValueError("a part lacks its field name")
    data = raw[header_end + 4 : end]
    return FormPart(params["name"], params.get("filename"), headers.get("content-type"), data)


def _parse_body(raw: bytes) -> tuple[Any, bool]:
    """(body, body_base64): the JSON value, else the text, else the base64 of bytes that are not UTF-8."""
    if not raw:
        return None, False
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), True
    try:
        return json.loads(text), False
    except (ValueError, RecursionError):
        return text, False


class _Handler(BaseHTTPRequestHandler):
    server: _SimHTTPServer

    def do_GET(self) -> None:
        sim = self.server.sim
        url = urlsplit(self.path)
        length = self._content_length()
        if length is None:
            self.send_error(400, "Content-Length must be a non-negative integer")
            return
        raw = self.rfile.read(length)
        content_type = self.headers.get("Content-Type") or ""
        payload: Any = _AS_RECORDED
        if content_type.lower().startswith("multipart/form-data") and not url.path.startswith(CONTROL_PREFIX):
            try:
                payload = parse_multipart(raw, content_type)
                body, body_base64 = payload.summary(), False
            except ValueError as error:
                payload, body, body_base64 = None, {"multipart_error": str(error), "size": len(raw)}, False
            del raw
        else:
            body, body_base64 = _parse_body(raw)
        if url.path.startswith(CONTROL_PREFIX):
            self._send(*sim.control(self.command, url.path, body))
            return
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        request = Recorded(self.command, url.path, query, dict(self.headers.items()), body, body_base64)
        try:
            self._send(*sim.answer(request, payload))
        except CloseConnection:
            self.close_connection = True

    def _content_length(self) -> int | None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return None
        return length if length >= 0 else None

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _send(self, status: int, headers: dict[str, str], payload: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _SimHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, sim: SimServer, port: int) -> None:
        self.sim = sim
        super().__init__(("127.0.0.1", port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (a timeout test) leaves a broken pipe behind: not worth a traceback.
        if not isinstance(sys.exception(), ConnectionError):
            super().handle_error(request, client_address)
