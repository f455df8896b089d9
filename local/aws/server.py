"""moto's server with IAM enforced: `python -m local.aws.server [-H HOST] [-p PORT]`.

With INITIAL_NO_AUTH_ACTION_COUNT at 0, moto checks every request's SigV4 signature and evaluates the caller's
identity policies. The patches below make that evaluation hold for this project's functions:

- identities: access key -> (secret key, session token, principal, policy documents), registered with
  `POST /_local/identities` and kept here, outside moto's backends, so `/moto-api/reset` does not forget them;
  the admin identity (local.aws.iam.ADMIN) is always known. Keys moto itself issued (IAM users) still work.
  As in AWS, a session's keys (a function's role) are valid with their own session token only, and long-term
  keys (the admin's) with none.
- resources: moto authorizes every service but S3 and SQS on resource "*", which no statement naming a resource
  matches. Secrets Manager, DynamoDB (each table of a batch) and EventBridge's PutEvents get the ARN of what they
  act on.
- wildcards: IAM's `*` and `?` in Action and Resource, every other character literal (moto read them as a regex).
- refusals: a request without a signature is refused (moto failed on it with a 500), and callers of JSON
  protocols get their refusal in JSON (AccessDeniedException, with AWS's status 400, ...), so botocore reads its
  code (moto's is XML).
- S3 actions of a version: moto authorizes GetObjectTagging and PutObjectTagging of a version as GetObjectVersion and
  PutObjectTagging, and HeadObject of a version as GetObject; AWS needs s3:GetObjectVersionTagging,
  s3:PutObjectVersionTagging and s3:GetObjectVersion ("Actions, resources, and condition keys for Amazon S3").
- SQS counts a message's 12 hours of visibility from its latest receive (ChangeMessageVisibility: "If you try to
  extend the visibility timeout beyond 12 hours, your request is rejected"); moto counted them from its sending, and
  refused a redelivered message's extension AWS takes.
- S3 notifications carry the object's versionId (versioned bucket) and a sequencer, as S3 sends them.
- Secrets Manager answers a missing secret or version with 400, as its API reference says (moto: 404).
- limits moto lets pass: a BatchWriteItem of more than 25 requests ("Amazon DynamoDB quotas") and a PutEvents whose
  entries come to 256 KB or more ("Calculating Amazon EventBridge PutEvents event entry size": Source, DetailType,
  Detail and each of Resources in UTF-8, 14 bytes for a Time) are refused with the services' ValidationException;
  an object written (PUT or POST) under a key of more than 1,024 bytes of UTF-8 ("Naming Amazon S3 objects") with
  S3's KeyTooLongError.
- speed: moto finds each request's backend by listing its own package directory and trying every URL pattern;
  both answers are fixed for a given host, so they are worked out once per host. A function's calls from several
  threads then wait on this process's CPU about as long as AWS would make them wait, not three times longer.

Enforcement stays on: `/moto-api/reset-auth`, which would turn it off, is refused.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.credentials import Credentials as BotoCredentials
from moto import backends, settings
from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import JsonRESTError
from moto.core.utils import unix_time_millis
from moto.dynamodb.exceptions import MockValidationException
from moto.dynamodb.responses import DynamoHandler
from moto.events.exceptions import ValidationException as EventsValidationException
from moto.events.responses import EventsHandler
from moto.iam import access_control
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.s3 import notifications
from moto.s3.exceptions import S3AccessDeniedError, S3ClientError
from moto.s3.responses import S3Response
from moto.secretsmanager import exceptions as secretsmanager_errors
from moto.secretsmanager.models import secretsmanager_backends
from moto.secretsmanager.responses import SecretsManagerResponse
from moto.sqs import models as sqs_models
from moto.sqs.exceptions import InvalidParameterValue, ReceiptHandleIsInvalid
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from local.aws.iam import ADMIN

IDENTITIES_PATH = "/_local/identities"


@dataclass(frozen=True)
class RegisteredKey:
    """An access key of a registered identity, with what moto's IAMRequest asks of an access key."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None
    arn: str
    policies: tuple[str, ...]

    def create_credentials(self) -> BotoCredentials:
        return BotoCredentials(self.access_key_id, self.secret_access_key, self.session_token)

    def collect_policies(self) -> list[str]:
        return list(self.policies)


IDENTITIES: dict[str, RegisteredKey] = {}


def register(identities: dict[str, dict[str, Any]]) -> None:
    """Access key id -> {"secret_access_key", "session_token", "principal", "policies"}
    (local.aws.iam.Identity.registration)."""
    for key_id, identity in identities.items():
        policies = tuple(json.dumps(policy) for policy in identity["policies"])
        IDENTITIES[key_id] = RegisteredKey(
            key_id, identity["secret_access_key"], identity.get("session_token"), identity["principal"], policies
        )


# ---------- who is asking ----------
_moto_access_key = access_control.create_access_key


def _access_key(account_id: str, partition: str, access_key_id: str, headers: dict[str, str]) -> Any:
    registered = IDENTITIES.get(access_key_id)
    if registered is None:
        return _moto_access_key(account_id, partition, access_key_id, headers)
    return registered


_moto_check_signature = access_control.IAMRequestBase.check_signature


def _check_signature_then_session_token(self: Any) -> None:
    """A registered key's session token is checked once its signature holds, so a wrong secret is refused as such."""
    _moto_check_signature(self)
    key = self._access_key
    if isinstance(key, RegisteredKey) and self._headers.get("X-Amz-Security-Token") != key.session_token:
        self._raise_invalid_access_key("InvalidToken")


class JsonError(JsonRESTError):
    """An error as AWS's JSON protocols send it: botocore reads the code from `__type` (moto's are XML)."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        self.code = status
        super().__init__(error_type, message)


class IAMRequest(access_control.IAMRequest):
    """moto's IAMRequest, refusing in JSON to callers that speak JSON (Secrets Manager, DynamoDB, SQS, ...)."""

    def _speaks_json(self) -> bool:
        return "json" in self._headers.get("Content-Type", "")

    def _raise_access_denied(self) -> None:
        if self._speaks_json():
            message = f"User: {self._access_key.arn} is not authorized to perform: {self._action}"
            raise JsonError(400, "AccessDeniedException", message)
        super()._raise_access_denied()

    def _raise_signature_does_not_match(self) -> None:
        if self._speaks_json():
            raise JsonError(400, "InvalidSignatureException", "The request signature we calculated does not match")
        super()._raise_signature_does_not_match()

    def _raise_invalid_access_key(self, reason: str) -> None:
        if self._speaks_json():
            raise JsonError(400, "UnrecognizedClientException", "The security token included in the request is invalid")
        super()._raise_invalid_access_key(reason)


_moto_authorize = ActionAuthenticatorMixin._authenticate_and_authorize_action


def _authorize_signed_only(self: Any, iam_request_cls: type, resource: str = "*") -> None:
    if "Authorization" not in self.headers:
        if iam_request_cls is access_control.S3IAMRequest:
            raise S3AccessDeniedError()
        raise JsonError(400, "MissingAuthenticationTokenException", "Missing Authentication Token")
    _moto_authorize(self, iam_request_cls, resource)


# ---------- what it acts on ----------
def _iam_glob(pattern: str, value: str) -> re.Match[str] | None:
    """IAM's matching: `*` any run of characters, `?` any one character."""
    regex = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(regex, value)


def _secret_arns(handler: Any) -> list[str]:
    """The ARN of the secret named by SecretId (a name or an ARN); a missing one by the ARN the request names."""
    secret_id = handler._get_param("SecretId") or ""
    secret = secretsmanager_backends[handler.current_account][handler.region].secrets.get(secret_id)
    if secret is not None:
        return [secret.arn]
    if secret_id.startswith("arn:"):
        return [secret_id]
    return [f"arn:{handler.partition}:secretsmanager:{handler.region}:{handler.current_account}:secret:{secret_id}"]


def _table_arns(handler: Any) -> list[str]:
    """The table (or index) acted on; for BatchGetItem and BatchWriteItem, each table of RequestItems."""
    prefix = f"arn:{handler.partition}:dynamodb:{handler.region}:{handler.current_account}:table/"
    batch = handler._get_param("RequestItems")
    if batch:
        return sorted(prefix + table for table in batch)
    table = handler._get_param("TableName")
    if not table:
        return ["*"]
    index = handler._get_param("IndexName")
    return [f"{prefix}{table}/index/{index}" if index else prefix + table]


def _event_bus_arns(handler: Any) -> list[str]:
    """PutEvents acts on the bus of each entry; any other events action is left on "*"."""
    if handler._get_action() != "PutEvents":
        return ["*"]
    prefix = f"arn:{handler.partition}:events:{handler.region}:{handler.current_account}:event-bus/"
    buses = {entry.get("EventBusName") or "default" for entry in handler._get_param("Entries") or []}
    return sorted(bus if bus.startswith("arn:") else prefix + bus for bus in buses)


def _authorize_each(self: Any, resources: str | list[str] = "*") -> None:
    """Authorize the action on every resource it touches (moto takes one)."""
    for resource in [resources] if isinstance(resources, str) else resources:
        ActionAuthenticatorMixin._authenticate_and_authorize_normal_action(self, resource)


RESOURCES: dict[type, Callable[[Any], list[str]]] = {
    SecretsManagerResponse: _secret_arns,
    DynamoHandler: _table_arns,
    EventsHandler: _event_bus_arns,
}


# ---------- Secrets Manager's statuses ----------
_MOTO_404_INITS: dict[type, Callable[..., None]] = {
    error_class: error_class.__init__
    for error_class in (
        secretsmanager_errors.ResourceNotFoundException,
        secretsmanager_errors.SecretNotFoundException,
        secretsmanager_errors.SecretHasNoValueException,
        secretsmanager_errors.SecretStageVersionMismatchException,
    )
}


def _answering_400(moto_init: Callable[..., None]) -> Callable[..., None]:
    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        moto_init(self, *args, **kwargs)
        self.code = 400

    return init


# ---------- limits moto lets pass ----------
BATCH_WRITE_MAX_REQUESTS = 25
PUT_EVENTS_MAX_BYTES = 256 * 1024
S3_KEY_MAX_BYTES = 1024
_moto_batch_write_item = DynamoHandler.batch_write_item
_moto_put_events = EventsHandler.put_events
_moto_key_response_put = S3Response._key_response_put
_moto_key_response_post = S3Response._key_response_post


def _batch_write_item(self: DynamoHandler) -> Any:
    requests = sum(len(writes) for writes in (self._get_param("RequestItems") or {}).values())
    if requests > BATCH_WRITE_MAX_REQUESTS:
        raise MockValidationException("Too many items requested for the BatchWriteItem call")
    return _moto_batch_write_item(self)


def _put_events(self: EventsHandler) -> Any:
    if sum(map(_entry_size, self._get_param("Entries") or [])) >= PUT_EVENTS_MAX_BYTES:
        raise EventsValidationException("Total size of the entries in the request is over the limit.")
    return _moto_put_events(self)


def _entry_size(entry: dict[str, Any]) -> int:
    texts = [entry.get(name) or "" for name in ("Source", "DetailType", "Detail")] + list(entry.get("Resources") or [])
    return (14 if entry.get("Time") is not None else 0) + sum(len(text.encode()) for text in texts)


def _refusing_long_keys(moto_method: Callable[..., Any]) -> Callable[..., Any]:
    """An S3Response method taking the object's key last."""

    def method(self: S3Response, *args: Any) -> Any:
        if len(args[-1].encode()) > S3_KEY_MAX_BYTES:
            raise S3ClientError("KeyTooLongError", "Your key is too long")
        return moto_method(self, *args)

    return method


# ---------- S3 actions of a version ----------
_moto_set_action = S3Response._set_action


def _set_action(self: S3Response, action_resource_type: str, method: str, querystring: dict[str, Any]) -> None:
    _moto_set_action(self, action_resource_type, method, querystring)
    if action_resource_type != "KEY" or "versionId" not in querystring:
        return
    if "tagging" in querystring and method in ("GET", "PUT"):
        self.data["Action"] = f"{method.title()}ObjectVersionTagging"
    elif method == "HEAD":
        self.data["Action"] = "GetObjectVersion"


# ---------- SQS visibility ----------
MAX_VISIBILITY_MS = 12 * 3600 * 1000
_moto_mark_received = sqs_models.Message.mark_received


def _mark_received(self: sqs_models.Message, visibility_timeout: int | None = None) -> None:
    _moto_mark_received(self, visibility_timeout)
    self.received_at = unix_time_millis()  # type: ignore[attr-defined]


def _change_message_visibility(
    self: sqs_models.SQSBackend, queue_name: str, receipt_handle: str, visibility_timeout: int
) -> None:
    """moto's, the 12 hours counted from the message's latest receive."""
    queue = self.get_queue(queue_name)
    for message in queue._messages:
        if message.had_receipt_handle(receipt_handle):
            received_at = message.received_at  # type: ignore[attr-defined]
            if unix_time_millis() + int(visibility_timeout) * 1000 - received_at > MAX_VISIBILITY_MS:
                raise InvalidParameterValue(
                    f"Value {visibility_timeout} for parameter VisibilityTimeout is invalid. Reason: Total "
                    "VisibilityTimeout for the message is beyond the limit [43200 seconds]"
                )
            message.change_visibility(visibility_timeout)
            if message.visible and message in queue.pending_messages:
                queue.pending_messages.remove(message)
            return
    raise ReceiptHandleIsInvalid


# ---------- S3 notifications ----------
_moto_s3_event = notifications._get_s3_event


def _s3_event(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, list[dict[str, Any]]]:
    event = _moto_s3_event(event_name, bucket, key, notification_id)
    s3_object = event["Records"][0]["s3"]["object"]
    if bucket.is_versioned:
        s3_object["versionId"] = key.version_id
    s3_object["sequencer"] = f"{time.time_ns():018X}"  # grows with each event, as S3's does per key
    return event


# ---------- speed ----------
_moto_list_of_modules = backends.list_of_moto_modules
_moto_backend_for_host = DomainDispatcherApplication.get_backend_for_host


def _backend_for_host(self: DomainDispatcherApplication, host: str | None) -> Any:
    known: dict[str | None, Any] = self.__dict__.setdefault("_backends_by_host", {})
    if host not in known:
        known[host] = _moto_backend_for_host(self, host)
    return known[host]


def enforce() -> None:
    """Turn IAM enforcement on in this process and apply the patches above (idempotent)."""
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    access_control.create_access_key = _access_key
    access_control.IAMRequestBase.check_signature = _check_signature_then_session_token  # type: ignore[method-assign]
    access_control.IAMRequest = IAMRequest  # type: ignore[misc]
    ActionAuthenticatorMixin._authenticate_and_authorize_action = _authorize_signed_only  # type: ignore[method-assign]
    access_control.IAMPolicyStatement._match = staticmethod(_iam_glob)  # type: ignore[method-assign,assignment]
    for handler, resources in RESOURCES.items():
        setattr(handler, "_determine_resource", resources)  # noqa: B010 - moto's call_action looks it up by name
        setattr(handler, "_authenticate_and_authorize_normal_action", _authorize_each)  # noqa: B010
    notifications._get_s3_event = _s3_event
    S3Response._set_action = _set_action  # type: ignore[method-assign]
    sqs_models.Message.mark_received = _mark_received  # type: ignore[method-assign]
    sqs_models.SQSBackend.change_message_visibility = _change_message_visibility  # type: ignore[method-assign]
    DynamoHandler.batch_write_item = _batch_write_item  # type: ignore[method-assign]
    EventsHandler.put_events = _put_events  # type: ignore[method-assign]
    S3Response._key_response_put = _refusing_long_keys(_moto_key_response_put)  # type: ignore[method-assign]
    S3Response._key_response_post = _refusing_long_keys(_moto_key_response_post)  # type: ignore[method-assign]
    for error_class, moto_init in _MOTO_404_INITS.items():
        setattr(error_class, "__init__", _answering_400(moto_init))  # noqa: B010 - mypy refuses an __init__ assigned
    register(ADMIN.registration())
    backends.list_of_moto_modules = functools.cache(lambda: tuple(_moto_list_of_modules()))
    DomainDispatcherApplication.get_backend_for_host = _backend_for_host  # type: ignore[method-assign]


class LocalApi:
    """The identities endpoint in front of moto's own application."""

    def __init__(self, moto_app: Any) -> None:
        self.moto_app = moto_app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if request.path == IDENTITIES_PATH and request.method == "POST":
            register(json.loads(request.get_data()))
            return Response(status=204)(environ, start_response)
        if request.path == "/moto-api/reset-auth":
            return Response("IAM enforcement stays on", status=403)(environ, start_response)
        return self.moto_app(environ, start_response)


class RequestHandler(MotoRequestHandler):
    # Headers and body are two writes: with Nagle's algorithm, a kept-alive client waits for a delayed ACK (40 ms).
    disable_nagle_algorithm = True


def make_wsgi_server(host: str, port: int) -> BaseWSGIServer:
    enforce()
    app = LocalApi(DomainDispatcherApplication(create_backend_app))
    return make_server(host, port, app, threaded=True, request_handler=RequestHandler)


def serve_in_thread(host: str = "127.0.0.1", port: int = 0) -> BaseWSGIServer:
    """For a caller that keeps the emulator in its own process (the in-process tests); `shutdown()` stops it."""
    server = make_wsgi_server(host, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m local.aws.server", description=__doc__)
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per request costs more than the request
    make_wsgi_server(args.host, args.port).serve_forever()


if __name__ == "__main__":
    main()
