"""An HTTP API (payload 2.0) on 127.0.0.1 that routes by the template's ApiGatewayV2 routes.

Authorization (IAM or JWT) is not enforced here: the deployed API Gateway does that.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from local.runtime.functions import FunctionRuntime, InvocationError
from local.template import HttpRoute

TEXT_TYPES = ("application/json", "text/", "application/xml", "application/javascript")


def http_api_event(
    route: HttpRoute, method: str, target: str, headers: dict[str, str], body: bytes, path_parameters: dict[str, str]
) -> dict[str, Any]:
    """The event API Gateway sends a Lambda proxy integration (payload format 2.0)."""
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
    if url.query:
        event["queryStringParameters"] = _query_parameters(url.query)
    if path_parameters:
        event["pathParameters"] = path_parameters
    if body:
        event["body"] = body.decode() if is_text else base64.b64encode(body).decode()
    return event


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


class Gateway:
    def __init__(self, routes: list[HttpRoute], runtimes: dict[str, FunctionRuntime], port: int = 0) -> None:
        self.routes = routes
        self.runtimes = runtimes
        self.observers: list[Callable[[bytes], None]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self.server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> Gateway:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def dispatch(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, dict, bytes]:
        path = urlsplit(target).path
        for route in self.routes:
            path_parameters = route.match(method, path)
            if path_parameters is not None:
                event = http_api_event(route, method, target, headers, body, path_parameters)
                try:
                    return _http_response(self.runtimes[route.function_id].invoke(event))
                except InvocationError:
                    return 500, {"Content-Type": "application/json"}, b'{"message":"Internal Server Error"}'
        return 404, {"Content-Type": "application/json"}, b'{"message":"Not Found"}'

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                started = time.monotonic()
                status, headers, payload = gateway.dispatch(self.command, self.path, dict(self.headers), body)
                for observer in gateway.observers:
                    observer(payload)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("X-Local-Latency-Ms", f"{(time.monotonic() - started) * 1000:.1f}")
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def _http_response(result: Any) -> tuple[int, dict[str, str], bytes]:
    if not isinstance(result, dict) or "statusCode" not in result:
        # Payload 2.0 treats any other result as a 200 JSON body.
        return 200, {"Content-Type": "application/json"}, json.dumps(result).encode()
    body = result.get("body") or ""
    payload = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    headers = {name: str(value) for name, value in (result.get("headers") or {}).items()}
    return int(result["statusCode"]), headers, payload
