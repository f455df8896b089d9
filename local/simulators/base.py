"""Plumbing shared by the provider simulators: a movable clock, a fault plan, request recording, the HTTP server.

A simulator subclasses SimServer and implements handle(). The base records every provider request, applies planned
faults before the handler runs and answers the control endpoints under /__sim/.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self
from urllib.parse import parse_qsl, urlsplit

type Response = tuple[int, dict[str, str], bytes]

COMMON_FAULT_KINDS = frozenset({"timeout", "http500", "non_json", "truncated_json", "http429", "close"})
CONTROL_PREFIX = "/__sim/"


def json_response(status: int, document: Any, headers: dict[str, str] | None = None) -> Response:
    payload = json.dumps(document, ensure_ascii=False).encode()
    return status, {"Content-Type": "application/json", **(headers or {})}, payload


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


@dataclass
class Fault:
    kind: str
    path: str | None
    times: int
    options: dict[str, Any] = field(default_factory=dict)


class Faults:
    """Planned faults, taken in the order they were added by the first request whose path matches."""

    def __init__(self, kinds: frozenset[str] = COMMON_FAULT_KINDS) -> None:
        self.kinds = kinds
        self._lock = threading.Lock()
        self._planned: list[Fault] = []

    def add(self, kind: str, *, path: str | None = None, times: int = 1, **options: Any) -> None:
        if kind not in self.kinds:
            raise ValueError(f"unknown fault kind {kind!r}, expected one of {sorted(self.kinds)}")
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise ValueError("times must be a positive integer")
        with self._lock:
            self._planned.append(Fault(kind, path, times, options))

    def take(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self._planned:
                if fault.path in (None, path):
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

    def start(self, lifetime_s: float = 900) -> Self:
        with self._lifecycle_lock:
            if self._httpd is not None:
                raise RuntimeError("a simulator starts only once")
            self._httpd = _SimHTTPServer(self)
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

    def answer(self, request: Recorded) -> Response:
        self.requests.append(request)
        with self._flight_lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            time.sleep(self.latency_s)
            fault = self.faults.take(request.path)
            if fault is not None and (response := self.apply_fault(fault)) is not None:
                return response
            return self.handle(request.method, request.path, request.query, request.headers, request.body)
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
                return json_response(429, self.envelope(429, self.rate_limit_message), {"Retry-After": "7"})
            case "close":
                raise CloseConnection
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
            self.faults.add(options.pop("kind", None), path=options.pop("path", None), **options)
        except (TypeError, ValueError) as error:
            return json_response(400, {"error": str(error)})
        return 204, {}, b""


def _parse_body(raw: bytes) -> Any:
    if not raw:
        return None
    text = raw.decode(errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


class _Handler(BaseHTTPRequestHandler):
    server: _SimHTTPServer

    def do_GET(self) -> None:
        sim = self.server.sim
        url = urlsplit(self.path)
        body = _parse_body(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        if url.path.startswith(CONTROL_PREFIX):
            self._send(*sim.control(self.command, url.path, body))
            return
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        try:
            self._send(*sim.answer(Recorded(self.command, url.path, query, dict(self.headers.items()), body)))
        except CloseConnection:
            self.close_connection = True

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

    def __init__(self, sim: SimServer) -> None:
        self.sim = sim
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (a timeout test) leaves a broken pipe behind: not worth a traceback.
        if not isinstance(sys.exception(), ConnectionError):
            super().handle_error(request, client_address)
