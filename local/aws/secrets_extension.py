"""A local stand-in of the AWS Parameters and Secrets Lambda Extension, for Secrets Manager secrets.

As AWS documents the extension ("Use AWS Secrets Manager secrets in AWS Lambda functions", AWS Secrets Manager User
Guide; "Using Parameter Store parameters in AWS Lambda functions", AWS Systems Manager User Guide):

- `GET /secretsmanager/get?secretId=ID` (optionally `versionId` or `versionStage`) on localhost, with the header
  X-Aws-Parameters-Secrets-Token equal to the function's AWS_SESSION_TOKEN. AWS does not document the refusal of a
  missing or wrong token: here it is 401 with a short text.
- It answers GetSecretValue's JSON, read with the function's own credentials, so the function's role needs
  secretsmanager:GetSecretValue as with an SDK; Secrets Manager's errors are passed on with their HTTP status.
- Each answer is cached for SECRETS_MANAGER_TTL seconds (300 by default and at most; 0 caches nothing), at most
  PARAMETERS_SECRETS_EXTENSION_CACHE_SIZE answers (1000 by default; 0 caches nothing), none when
  PARAMETERS_SECRETS_EXTENSION_CACHE_ENABLED is false.

Dates are epoch seconds, as Secrets Manager's JSON protocol sends them, and a SecretBinary is base64. Parameter
Store is not served: every path but /secretsmanager/get answers 404. It listens on 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import hmac
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

AUTH_HEADER = "X-Aws-Parameters-Secrets-Token"
GET_PATH = "/secretsmanager/get"
# The query's arguments -> GetSecretValue's.
ARGUMENTS = {"secretId": "SecretId", "versionId": "VersionId", "versionStage": "VersionStage"}
MAX_TTL_S = 300
DEFAULT_CACHE_SIZE = 1000

CacheKey = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str = "application/json"

    @classmethod
    def text(cls, status: int, text: str) -> Answer:
        return cls(status, text.encode(), "text/plain; charset=utf-8")


class SecretsExtension:
    """The extension of one function's execution environment: `start()` it, read `port`, `stop()` it."""

    def __init__(self, function_env: Mapping[str, str], clock: Callable[[], float] = time.monotonic) -> None:
        self.session_token = function_env["AWS_SESSION_TOKEN"]
        self.cache_size = _cache_size(function_env)
        self.ttl_s = _ttl_s(function_env) if self.cache_size else 0
        self.clock = clock
        self.secrets_manager = _secrets_manager(function_env)
        self.cache: OrderedDict[CacheKey, tuple[float, bytes]] = OrderedDict()
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    def start(self, port: int = 0) -> SecretsExtension:
        self.server = ThreadingHTTPServer(("127.0.0.1", port), _handler_class(self))
        threading.Thread(target=self.server.serve_forever, name="secrets-extension", daemon=True).start()
        return self

    @property
    def port(self) -> int:
        assert self.server is not None, "not started"
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def clear_cache(self) -> None:
        """Forget every cached answer, as the extension of a new execution environment starts."""
        with self.lock:
            self.cache.clear()

    def get_secret(self, arguments: dict[str, str]) -> Answer:
        """GetSecretValue's answer for these query arguments, from the cache while it is fresh."""
        key = tuple(sorted(arguments.items()))
        cached = self._cached(key)
        if cached is not None:
            return Answer(200, cached)
        answer = self._get_secret_value(arguments)
        if answer.status == 200:
            self._keep(key, answer.body)
        return answer

    def _cached(self, key: CacheKey) -> bytes | None:
        with self.lock:
            expires_at, body = self.cache.get(key, (0.0, b""))
            if expires_at <= self.clock():
                self.cache.pop(key, None)
                return None
            self.cache.move_to_end(key)
            return body

    def _keep(self, key: CacheKey, body: bytes) -> None:
        if not self.ttl_s:
            return
        with self.lock:
            self.cache[key] = (self.clock() + self.ttl_s, body)
            self.cache.move_to_end(key)
            while len(self.cache) > self.cache_size:
                self.cache.popitem(last=False)

    def _get_secret_value(self, arguments: dict[str, str]) -> Answer:
        try:
            value = self.secrets_manager.get_secret_value(**{ARGUMENTS[name]: arg for name, arg in arguments.items()})
        except ClientError as error:
            status = int(error.response["ResponseMetadata"]["HTTPStatusCode"])
            refusal = {"__type": error.response["Error"]["Code"], "message": error.response["Error"]["Message"]}
            return Answer(status, json.dumps(refusal).encode())
        except ParamValidationError:
            return Answer.text(400, "invalid secretId, versionId or versionStage")
        except BotoCoreError as error:
            return Answer.text(500, f"Secrets Manager could not be reached: {type(error).__name__}")
        value.pop("ResponseMetadata", None)
        return Answer(200, json.dumps(value, default=_wire_value).encode())


def _secrets_manager(function_env: Mapping[str, str]) -> Any:
    """A client acting as the function: its credentials, its region, its endpoint (the emulator locally)."""
    session = boto3.session.Session(
        aws_access_key_id=function_env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=function_env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=function_env["AWS_SESSION_TOKEN"],
        region_name=function_env.get("AWS_REGION") or function_env["AWS_DEFAULT_REGION"],
    )
    return session.client("secretsmanager", endpoint_url=function_env.get("AWS_ENDPOINT_URL"))


def _ttl_s(function_env: Mapping[str, str]) -> int:
    if function_env.get("PARAMETERS_SECRETS_EXTENSION_CACHE_ENABLED", "true").lower() == "false":
        return 0
    return min(max(int(function_env.get("SECRETS_MANAGER_TTL", MAX_TTL_S)), 0), MAX_TTL_S)


def _cache_size(function_env: Mapping[str, str]) -> int:
    return max(int(function_env.get("PARAMETERS_SECRETS_EXTENSION_CACHE_SIZE", DEFAULT_CACHE_SIZE)), 0)


def _wire_value(value: Any) -> Any:
    """How Secrets Manager's JSON protocol sends what botocore parsed: timestamps in epoch seconds, blobs base64."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not in GetSecretValue's answer")


def _handler_class(extension: SecretsExtension) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body are two writes: with Nagle's algorithm, a kept-alive client waits for a delayed ACK (40 ms).
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path != GET_PATH:
                self._send(Answer.text(404, "not found"))
            elif not self._has_session_token():
                self._send(Answer.text(401, f"missing or wrong {AUTH_HEADER} header"))
            else:
                self._send(self._secret(parse_qs(url.query)))

        def _has_session_token(self) -> bool:
            given = self.headers.get(AUTH_HEADER, "")
            return hmac.compare_digest(given.encode(), extension.session_token.encode())

        def _secret(self, query: dict[str, list[str]]) -> Answer:
            arguments = {name: query[name][0] for name in ARGUMENTS if name in query}
            if "secretId" not in arguments:
                return Answer.text(400, "secretId is required")
            return extension.get_secret(arguments)

        def _send(self, answer: Answer) -> None:
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        def log_message(self, format: str, *args: Any) -> None:
            """Silent: the function's log is no place for the extension's request lines."""

    return Handler
