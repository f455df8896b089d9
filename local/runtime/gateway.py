"""An HTTP API (payload 2.0) on 127.0.0.1 that routes by the template's ApiGatewayV2 routes.

Each route's authorization (the template's AuthorizationType: AWS_IAM, JWT or NONE) is checked as API Gateway
checks it, after the route is found (a request no route serves is 404 whatever it carries): local.runtime.authorization.
A gateway given no Authorization checks none (the local stack's "open" switch). The limits AWS documents for an HTTP
API in front of Lambda are held, and each is answered as API Gateway answers it:

- "Quotas for configuring and running an HTTP API in API Gateway": payload size 10 MB, so a larger request is refused
  before any function runs, 413 {"message":"Request Entity Too Large"}; maximum integration timeout 30 seconds (not
  adjustable), so an answer not back by then is not awaited, 503 {"message":"Service Unavailable"}, while the
  function runs on until it ends or its own Timeout stops it.
- "Lambda quotas" (6 MB request and response, synchronous; see functions.py): a request Lambda refuses is answered 413
  like the one above; a response over it, a function error or a function timeout is 500
  {"message":"Internal Server Error"} ("Troubleshooting issues with HTTP API Lambda integrations").
- "Create routes for HTTP APIs in API Gateway": a route is one method (or ANY) and a path, and nothing serves HEAD
  from a GET route; OPTIONS is answered by API Gateway itself only when CORS is configured ("Configure CORS for HTTP
  APIs in API Gateway"), which this API is not. Both, without a route of their own, are 404 {"message":"Not Found"}.

AWS's pages give the limits and the 500; the 413 and 503 bodies are what deployed HTTP APIs are reported to send.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from datetime import UTC, datetime
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from local.runtime.authorization import Authorization, Refused
from local.runtime.functions import FunctionRuntime, InvocationError, RequestTooLarge
from local.template import HttpRoute

TEXT_TYPES = ("application/json", "text/", "application/xml", "application/javascript")
PAYLOAD_LIMIT_BYTES = 10 * 1024 * 1024
INTEGRATION_TIMEOUT_S = 30.0
Answer = tuple[int, dict[str, str], bytes]


def _gateway_answer(status: int, message: str, headers: dict[str, str] | None = None) -> Answer:
    return status, {"Content-Type": "application/json"} | (headers or {}), json.dumps({"message": message}).encode()


NOT_FOUND = _gateway_answer(404, "Not Found")
REQUEST_ENTITY_TOO_LARGE = _gateway_answer(413, "Request Entity Too Large")
INTERNAL_SERVER_ERROR = _gateway_answer(500, "Internal Server Error")
SERVICE_UNAVAILABLE = _gateway_answer(503, "Service Unavailable")


def http_api_event(
    route: HttpRoute,
    method: str,
    target: str,
    headers: dict[str, str],
    body: bytes,
    path_parameters: dict[str, str],
    authorizer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The event API Gateway sends a Lambda proxy integration (payload format 2.0); `authorizer`, what the route's
    authorization found (local.runtime.authorization), goes into its requestContext."""
    url = urlsplit(target)
    now = datetime.now(UTC)
    lowered = {name.lower(): value for name, value in headers.items()}
    is_text = not body or (lowered.get("content-type", "application/json").startswith(TEXT_TYPES) and _is_utf8(body))
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"{route.method} {route.path}",
        "rawPath": url.path,
        "rawQueryString": url.query,
        "headers": lowered,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": lowered.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": url.path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": base64.urlsafe_b64encode(uuid.uuid4().bytes[:12]).decode(),
            "routeKey": f"{route.method} {route.path}",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": not is_text,
    }
    if authorizer:
        event["requestContext"]["authorizer"] = authorizer
    if url.query:
        event["queryStringParameters"] = _query_parameters(url.query)
    if path_parameters:
        event["pathParameters"] = path_parameters
    if body:
        event["body"] = body.decode() if is_text else base64.b64encode(body).decode()
    return event


def _joined(message: Message) -> dict[str, str]:
    """One value per header name, lower-cased: payload 2.0 has no multiValueHeaders, and "duplicate headers are
    combined with commas" ("Create AWS Lambda proxy integrations for HTTP APIs in API Gateway"). A plain dict of the
    message would keep only the first value."""
    headers: dict[str, str] = {}
    for name, value in message.items():
        key = name.lower()
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    return headers


def _is_utf8(body: bytes) -> bool:
    """API Gateway passes a body that is not UTF-8 base64-encoded, whatever its content type says."""
    try:
        body.decode()
    except UnicodeDecodeError:
        return False
    return True


def _query_parameters(query: str) -> dict[str, str]:
    """Repeated keys are joined with commas, as API Gateway does."""
    params: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        params[key] = f"{params[key]},{value}" if key in params else value
    return params


class _Server(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: a burst of clients beyond it would wait for SYN retransmits.
    request_queue_size = 128
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away (Ctrl-C during the demo, a test's timeout) leaves a broken pipe: no traceback.
        if not isinstance(sys.exception(), ConnectionError):
            super().handle_error(request, client_address)


class Gateway:
    def __init__(
        self,
        routes: list[HttpRoute],
        runtimes: dict[str, FunctionRuntime],
        port: int = 0,
        *,
        integration_timeout_s: float = INTEGRATION_TIMEOUT_S,
        authorization: Authorization | None = None,
    ) -> None:
        self.routes = routes
        self.runtimes = runtimes
        self.authorization = authorization
        self.integration_timeout_s = integration_timeout_s
        self.observers: list[Callable[[bytes], None]] = []
        self.server = _Server(("127.0.0.1", port), self._handler_class())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> Gateway:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def dispatch(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Answer:
        path = urlsplit(target).path
        for route in self.routes:
            path_parameters = route.match(method, path)
            if path_parameters is not None:
                try:
                    authorizer = self._authorize(route, method, target, headers, body)
                except Refused as refusal:
                    return _gateway_answer(refusal.status, refusal.message, refusal.headers)
                event = http_api_event(route, method, target, headers, body, path_parameters, authorizer)
                return self._integrate(self.runtimes[route.function_id], event)
        return NOT_FOUND

    def _authorize(
        self, route: HttpRoute, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> dict[str, Any] | None:
        if self.authorization is None:
            return None
        return self.authorization.authorize(route, method, target, headers, body)

    def _integrate(self, runtime: FunctionRuntime, event: dict[str, Any]) -> Answer:
        try:
            return _http_response(self._invoke_within_timeout(runtime, event))
        except TimeoutError:
            return SERVICE_UNAVAILABLE
        except RequestTooLarge:
            return REQUEST_ENTITY_TOO_LARGE
        except InvocationError:
            return INTERNAL_SERVER_ERROR

    def _invoke_within_timeout(self, runtime: FunctionRuntime, event: dict[str, Any]) -> Any:
        """The function's result if it comes within the integration timeout; the invocation goes on regardless."""
        result: Future[Any] = Future()

        def invoke() -> None:
            try:
                result.set_result(runtime.invoke(event))
            except Exception as error:  # handed over to the waiting request
                result.set_exception(error)

        threading.Thread(target=invoke, daemon=True).start()
        return result.result(timeout=self.integration_timeout_s)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                started = time.monotonic()
                status, headers, payload = self._answer()
                for observer in gateway.observers:
                    observer(payload)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("X-Local-Latency-Ms", f"{(time.monotonic() - started) * 1000:.1f}")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            def _answer(self) -> Answer:
                length = int(self.headers.get("Content-Length") or 0)
                if length > PAYLOAD_LIMIT_BYTES:
                    self._discard(length)
                    return REQUEST_ENTITY_TOO_LARGE
                body = self.rfile.read(length) if length else b""
                return gateway.dispatch(self.command, self.path, _joined(self.headers), body)

            def _discard(self, length: int) -> None:
                """Read a refused body to its end, so that the client, still sending it, gets the answer."""
                while length > 0:
                    chunk = self.rfile.read(min(length, 1 << 16))
                    if not chunk:
                        return
                    length -= len(chunk)

            do_GET = do_HEAD = do_OPTIONS = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def _http_response(result: Any) -> Answer:
    if not isinstance(result, dict) or "statusCode" not in result:
        # Payload 2.0 treats any other result as a 200 JSON body.
        return 200, {"Content-Type": "application/json"}, json.dumps(result).encode()
    body = result.get("body") or ""
    payload = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    headers = {name: str(value) for name, value in (result.get("headers") or {}).items()}
    return int(result["statusCode"]), headers, payload
