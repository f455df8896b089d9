"""HTTP concerns of the API functions: the resolver, the one error shape, and exception mapping."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from functools import partial
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Header
from aws_lambda_powertools.shared.json_encoder import Encoder
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from sharelink.deadline import DEADLINE
from sharelink.errors import MalformedJson, RequestTooLarge, RetryLater, RouteNotFound, SharelinkError
from sharelink.observability import logger
from sharelink.validation import MAX_BODY_BYTES, parse_json_body, validation_error


class ErrorDetail(BaseModel):
    field: str
    problem: str


class ErrorInfo(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail]
    provider: str | None
    provider_code: int | str | None


class ErrorBody(BaseModel):
    """The one shape of every error answer."""

    error: ErrorInfo
    request_id: str


ERROR_STATUSES = {
    400: "The body is not UTF-8 JSON, not an object, nested too deep, or sent with another Content-Type",
    403: "The provider refuses this caller the share-edit right",
    404: "The provider has no such file or link",
    409: "This Idempotency-Key was used with another body, or its first request is still running or settling "
    "(idempotency_conflict; Retry-After when settling); or which share an earlier attempt made cannot be told "
    "(outcome_unknown)",
    413: "The body is over 64 KiB",
    422: "A field breaks the rules (every bad field named), or the provider refused the parameters",
    429: "The provider is rate limiting; see Retry-After",
    500: "A bug; logged with the request id",
    502: "The provider failed, answered garbage, or rejected the stored token",
    503: "A keyed create found the idempotency table over its throughput for a while: retry with the same key",
    504: "The provider did not answer in time",
}
ERROR_RESPONSES: dict[int, Any] = {
    status: {"description": description, "content": {"application/json": {"model": ErrorBody}}}
    for status, description in ERROR_STATUSES.items()
}
# What any route can answer: a body that is not JSON or too large (checked whenever one is sent, whatever the
# method: JsonResolver), a bad field (every route validates some input), its provider's refusals and failures.
EVERY_ROUTE_ERRORS = frozenset({400, 413, 422, 429, 500, 502, 504})


def responses(status: int, description: str, *, errors: Iterable[int] = ()) -> dict[int, Any]:
    """A route's documented answers: its success, the errors any route can answer, and its own `errors`."""
    return {status: {"description": description}} | {
        error: ERROR_RESPONSES[error] for error in sorted(EVERY_ROUTE_ERRORS.union(errors))
    }


# The `Idempotency-Key` header of the POST routes (DESIGN.md, "Idempotency").
IdempotencyKey = Annotated[str | None, Header(min_length=1, max_length=255)]


class JsonResolver(APIGatewayHttpResolver):
    """Bodies are UTF-8 JSON within the limits of a share request: anything else is refused before Powertools'
    validation parses it (a multipart body without a boundary, bytes that are not UTF-8, JSON nested thousands
    deep or integers of thousands of digits would otherwise surface as bare exceptions)."""

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        problem = _not_a_json_body(event)
        if problem is None:
            with DEADLINE.running(context.get_remaining_time_in_millis()):
                return super().resolve(_media_type_lowered(event), context)
        body = error_body(problem, event.get("requestContext", {}).get("requestId", ""))
        return {
            "statusCode": problem.status,
            "headers": {"Content-Type": "application/json"},
            "body": body.model_dump_json(),
            "isBase64Encoded": False,
        }


def _media_type_lowered(event: Mapping[str, Any]) -> dict[str, Any]:
    """Media types are case-insensitive (RFC 9110); Powertools compares them as written."""
    headers = {
        name: value.lower() if name.lower() == "content-type" else value
        for name, value in (event.get("headers") or {}).items()
    }
    return {**event, "headers": headers}


def _not_a_json_body(event: Mapping[str, Any]) -> SharelinkError | None:
    body = event.get("body")
    if not body:
        return None
    headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
    content_type = str(headers.get("content-type", ""))
    if content_type and content_type.split(";")[0].strip().lower() != "application/json":
        return MalformedJson(f"the body must be JSON (Content-Type: application/json), not {content_type[:60]}")
    try:
        raw = base64.b64decode(body, validate=True) if event.get("isBase64Encoded") else str(body).encode()
        if len(raw) > MAX_BODY_BYTES:
            return RequestTooLarge(f"the body is over {MAX_BODY_BYTES // 1024} KiB")
        raw.decode("utf-8")
    except (binascii.Error, UnicodeError):
        return MalformedJson("the body must be UTF-8 JSON")
    return None


def create_app() -> APIGatewayHttpResolver:
    # UTF-8 bodies: share names are mostly Chinese, and \uXXXX escapes make them unreadable in curl.
    serializer = partial(json.dumps, separators=(",", ":"), ensure_ascii=False, cls=Encoder)
    app = JsonResolver(enable_validation=True, serializer=serializer, json_body_deserializer=parse_json_body)

    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response:
        return error_response(app, request_error(exc.errors()))

    @app.exception_handler(SharelinkError)
    def _typed(exc: SharelinkError) -> Response:
        if exc.status >= 500:
            logger.warning("provider call failed", extra={"code": exc.code, "provider_code": exc.provider_code})
        return error_response(app, exc)

    @app.exception_handler(Exception)
    def _bug(exc: Exception) -> Response:
        logger.exception("unhandled error")
        return error_response(app, SharelinkError("internal error; see the function's log for this request id"))

    @app.not_found
    def _no_route(exc: Exception) -> Response:
        return error_response(app, RouteNotFound("no such route"))

    return app


def json_response(status: int, body: BaseModel | dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, content_type="application/json", body=body, headers=headers)


def error_body(error: SharelinkError, request_id: str) -> ErrorBody:
    return ErrorBody.model_validate({"error": error.to_dict(), "request_id": request_id})


def error_response(app: APIGatewayHttpResolver, error: SharelinkError) -> Response:
    body = error_body(error, app.current_event.request_context.request_id)
    headers = {"Retry-After": str(error.retry_after)} if isinstance(error, RetryLater) else None
    return json_response(error.status, body, headers)


def request_error(errors: Any) -> SharelinkError:
    """Powertools' validation errors carry where the value was ("body", "query", "path") first in `loc`."""
    return validation_error([{**error, "loc": tuple(error.get("loc", ()))[1:]} for error in errors])
