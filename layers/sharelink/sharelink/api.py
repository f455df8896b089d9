"""HTTP concerns of the API functions: the resolver, the one error shape, and exception mapping."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.shared.json_encoder import Encoder
from pydantic import BaseModel

from sharelink.errors import InvalidRequest, MalformedJson, ProviderRateLimited, RouteNotFound, SharelinkError
from sharelink.observability import logger

# Pydantic error types that mean "the body is not a JSON object" rather than "a field is wrong".
NOT_AN_OBJECT = {"json_invalid", "model_type", "model_attributes_type", "dict_type", "missing"}


def create_app() -> APIGatewayHttpResolver:
    # UTF-8 bodies: share names are mostly Chinese, and \uXXXX escapes make them unreadable in curl.
    serializer = partial(json.dumps, separators=(",", ":"), ensure_ascii=False, cls=Encoder)
    app = APIGatewayHttpResolver(enable_validation=True, serializer=serializer)

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


def error_response(app: APIGatewayHttpResolver, error: SharelinkError) -> Response:
    body = {
        "error": {
            "code": error.code,
            "message": error.message,
            "details": error.details,
            "provider": error.provider,
            "provider_code": error.provider_code,
        },
        "request_id": app.current_event.request_context.request_id,
    }
    headers = {"Retry-After": str(error.retry_after)} if isinstance(error, ProviderRateLimited) else None
    return json_response(error.status, body, headers)


def request_error(errors: Any) -> SharelinkError:
    """Map Powertools' validation errors (loc/type/msg) to malformed_json or invalid_request."""
    if any(_is_not_an_object(error) for error in errors):
        return MalformedJson("the body must be a JSON object")
    details = [{"field": _field_name(error["loc"]), "problem": error.get("msg", error["type"])} for error in errors]
    message = "; ".join(f"{detail['field']}: {detail['problem']}" for detail in details)
    return InvalidRequest(message, details=details)


def _is_not_an_object(error: dict[str, Any]) -> bool:
    loc = tuple(error.get("loc", ()))
    return error.get("type") == "json_invalid" or (loc == ("body",) and error.get("type") in NOT_AN_OBJECT)


def _field_name(loc: Any) -> str:
    """("body", "file_ids", 0) -> "file_ids[0]"; ("query", "limit") -> "limit"."""
    where, *path = loc
    name = ""
    for part in path:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or str(where)
