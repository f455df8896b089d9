"""The contract every adversarial case checks, and the events that carry a hostile request to a handler.

Whatever the caller sends:
- no answer is a 5xx, none holds "Traceback";
- every error is `{"error": {"code", "message", "details": [{"field", "problem"}], "provider", "provider_code"},
  "request_id"}` served as JSON, nothing more, nothing less;
- a request refused for its own input never reaches a provider's share endpoints.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from types import ModuleType
from typing import Any
from urllib.parse import quote

from local.runtime.worker import LambdaContext
from tests.conftest import load_event
from tests.leaks import observe

ERROR_KEYS = {"code", "message", "details", "provider", "provider_code"}
MALFORMED = (400, "malformed_json")
TOO_LARGE = (413, "request_too_large")
INVALID = (422, "invalid_request")
PROVIDER_NOT_FOUND = (404, "provider_not_found")
# Errors about the caller's own input: no provider is involved, so none may have been called.
CALLER_ERRORS = {"malformed_json", "request_too_large", "invalid_request", "not_found"}
ACCEPTED = "accepted"
"""Expected answer of a request the contract accepts: the route's success status."""

Expected = tuple[int, str] | frozenset[tuple[int, str]] | str

# route -> (provider, sample event in events/, success status)
ROUTES: dict[str, tuple[str, str, int]] = {
    "123pan POST": ("pan123", "pan123_create.json", 201),
    "123pan PATCH": ("pan123", "pan123_update_traffic.json", 200),
    "123pan GET": ("pan123", "pan123_list.json", 200),
    "kdocs POST": ("kdocs", "kdocs_create.json", 200),
    "kdocs GET": ("kdocs", "kdocs_read.json", 200),
    "kdocs DELETE": ("kdocs", "kdocs_close.json", 200),
}
BODY_ROUTES = ("123pan POST", "123pan PATCH", "kdocs POST")
CREATE_ROUTES = ("123pan POST", "kdocs POST")
# Valid bodies the simulators accept: 123pan files 1..1000 exist, KDocs' user owns file 777.
VALID_BODIES: dict[str, dict[str, Any]] = {
    "123pan POST": {"name": "报告", "expire_days": 7, "file_ids": [1, 2]},
    "123pan PATCH": {"share_ids": [87187530], "traffic_switch": 2},
    "kdocs POST": {"file_token": "777", "permission": "read"},
}
# Each field's other spelling, per route: setting one spelling drops the other from the valid body.
TWINS: dict[str, dict[str, str]] = {
    "123pan POST": {
        "name": "shareName",
        "expire_days": "shareExpire",
        "file_ids": "fileIDList",
        "password": "sharePwd",
        "traffic_switch": "trafficSwitch",
        "traffic_limit_switch": "trafficLimitSwitch",
        "traffic_limit": "trafficLimit",
    },
    "123pan PATCH": {
        "share_ids": "shareIdList",
        "traffic_switch": "trafficSwitch",
        "traffic_limit_switch": "trafficLimitSwitch",
        "traffic_limit": "trafficLimit",
    },
    "kdocs POST": {"expire_days": "period", "allow_comment": "ext_perm_list"},
}
# The providers' share endpoints (123pan share/create, share/list, share/list/info; KDocs .../files/{token}/links).
SHARE_ENDPOINT = re.compile(r"/share/|/links$")
# RFC 3986 pchar beside unreserved characters: what a client may leave unencoded in a path segment.
PATH_SUB_DELIMS = "!$&'()*+,;=:@"


@dataclass(frozen=True)
class Raw:
    """A JSON literal written as is (an integer of 5,000 digits, 1e309, NaN), where json.dumps cannot write it."""

    text: str


@dataclass(frozen=True)
class Encoded:
    """A body API Gateway passes base64-encoded (`isBase64Encoded`): bytes to encode, or a string sent as is."""

    data: bytes | str


Body = dict[str, Any] | str | Encoded | None


def body_with(route: str, **fields: Any) -> dict[str, Any]:
    """The route's valid body with `fields` set (each field's other spelling removed)."""
    twins = TWINS[route]
    spellings = twins | {provider: snake for snake, provider in twins.items()}
    body = {name: value for name, value in VALID_BODIES[route].items() if spellings.get(name) not in fields}
    return body | fields


def dumps(value: Any) -> str:
    """JSON text as a client writes it: UTF-8 where it can be, \\u escapes for lone surrogates, Raw literals as is."""
    raws: list[str] = []

    def literal(obj: Any) -> str:
        if isinstance(obj, Raw):
            raws.append(obj.text)
            return f"@@RAW{len(raws) - 1}@@"
        raise TypeError(f"cannot write {obj!r}")

    try:
        text = json.dumps(value, ensure_ascii=False, default=literal)
        text.encode()
    except UnicodeEncodeError:
        raws.clear()
        text = json.dumps(value, default=literal)
    for index, raw in enumerate(raws):
        text = text.replace(f'"@@RAW{index}@@"', raw, 1)
    return text


def body_event(
    route: str,
    body: Body,
    *,
    content_type: str | None = "application/json",
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The route's sample event carrying `body` (None: no body at all), as API Gateway would pass it."""
    event = load_event(ROUTES[route][1])
    event["headers"].pop("content-type", None)
    if content_type is not None:
        event["headers"]["content-type"] = content_type
    event["headers"].update(headers or {})
    if body is None:
        event.pop("body", None)
        event["headers"].pop("content-length", None)
        return event
    if isinstance(body, Encoded):
        raw = body.data
        event["body"] = base64.b64encode(raw).decode() if isinstance(raw, bytes) else raw
        event["isBase64Encoded"] = True
        length = len(raw) if isinstance(raw, bytes) else len(raw.encode())
    else:
        event["body"] = body if isinstance(body, str) else dumps(body)
        event["isBase64Encoded"] = False
        length = len(event["body"].encode(errors="surrogatepass"))
    event["headers"]["content-length"] = str(length)
    return event


def query_event(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """A list request with these query parameters: percent-encoded (UTF-8) in rawQueryString, decoded and repeated
    keys joined with commas in queryStringParameters, as API Gateway does."""
    event = load_event("pan123_list.json")
    event["rawQueryString"] = "&".join(f"{quote(key, safe='')}={quote(value, safe='')}" for key, value in pairs)
    parameters: dict[str, str] = {}
    for key, value in pairs:
        parameters[key] = f"{parameters[key]},{value}" if key in parameters else value
    event["queryStringParameters"] = parameters
    return event


def path_event(route: str, file_token: str, *, safe: str = "") -> dict[str, Any]:
    """A KDocs read or close of `file_token`, percent-encoded in the path but for the characters in `safe`."""
    event = load_event(ROUTES[route][1])
    path = f"/v1/shares/kdocs/{quote(file_token, safe=safe)}"
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["pathParameters"] = {"file_token": file_token}
    return event


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        try:
            return json.loads(self.text)
        except ValueError:
            raise AssertionError(f"{self.status} answered a body that is not JSON: {self.text[:300]!r}") from None


def handle(module: ModuleType, event: dict[str, Any]) -> Answer:
    """Call a handler as Lambda does (the answer is handed to the leak check like every test's answers)."""
    result = module.lambda_handler(event, LambdaContext("sharelink-adversarial"))
    text = result.get("body") or ""
    if result.get("isBase64Encoded"):
        text = base64.b64decode(text).decode(errors="replace")
    observe(text)
    headers = {str(name).lower(): str(value) for name, value in (result.get("headers") or {}).items()}
    return Answer(int(result["statusCode"]), headers, text)


def error_shape(answer: Answer) -> dict[str, Any]:
    """The answer's error body, after checking it is exactly the one error shape."""
    assert answer.status < 500, f"{answer.status} for input the caller controls: {answer.text[:500]}"
    assert "Traceback" not in answer.text, answer.text[:2000]
    assert answer.headers.get("content-type", "").startswith("application/json"), answer.headers
    body = answer.json()
    assert isinstance(body, dict), f"{answer.status} answered a non-object: {answer.text[:300]}"
    assert set(body) == {"error", "request_id"}, f"not the error shape: {answer.text[:500]}"
    error = body["error"]
    assert isinstance(error, dict), body
    assert set(error) == ERROR_KEYS, f"not the error shape: {answer.text[:500]}"
    assert isinstance(error["code"], str), error
    assert isinstance(error["message"], str), error
    assert error["message"], error
    assert isinstance(error["details"], list), error
    for detail in error["details"]:
        assert isinstance(detail, dict), error
        assert set(detail) == {"field", "problem"}, error
        assert isinstance(detail["field"], str), error
        assert isinstance(detail["problem"], str), error
        assert detail["problem"], error
    assert error["provider"] is None or isinstance(error["provider"], str), error
    code = error["provider_code"]
    assert code is None or (isinstance(code, int | str) and not isinstance(code, bool)), error
    assert isinstance(body["request_id"], str), body
    return body


def check(answer: Answer, route: str, expected: Expected, field: str | None = None) -> None:
    """The answer is the expected one: the route's success (ACCEPTED) or an error in the one shape with one of the
    expected (status, code); `field`, when given, is named by a detail (itself, or an element or member of it)."""
    if expected == ACCEPTED:
        assert answer.status == ROUTES[route][2], f"refused: {answer.status} {answer.text[:500]}"
        body = answer.json()
        assert isinstance(body, dict), body
        assert "error" not in body, body
        return
    assert answer.status >= 400, (
        f"{answer.status}: accepted what the contract refuses ({expected}): {answer.text[:300]}"
    )
    body = error_shape(answer)
    error = body["error"]
    allowed = expected if isinstance(expected, frozenset) else {expected}
    got = (answer.status, error["code"])
    assert got in allowed, f"{got} instead of {sorted(allowed)}: {error['message'][:300]}"
    if error["code"] in CALLER_ERRORS:
        assert (error["provider"], error["provider_code"]) == (None, None), error
    if error["code"] == "invalid_request":
        assert error["details"], f"invalid_request without details: {error}"
    if field is not None:
        fields = [detail["field"] for detail in error["details"]]
        assert any(named(name, field) for name in fields), f"{field!r} not named in the details: {fields}"


def named(name: str, field: str) -> bool:
    return name == field or name.startswith((f"{field}[", f"{field}."))


def refused_for_caller(expected: Expected) -> bool:
    """Whether the expected answer is a refusal of the caller's input, made before any provider call."""
    if isinstance(expected, str):
        return False
    allowed = expected if isinstance(expected, frozenset) else {expected}
    return all(code in CALLER_ERRORS for _, code in allowed)


def is_caller_refusal(answer: Answer) -> bool:
    """Whether the answer refuses the caller's input (whatever else may be wrong with it)."""
    try:
        code = json.loads(answer.text)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return False
    return 400 <= answer.status < 500 and code in CALLER_ERRORS


def share_calls(sim: Any) -> list[str]:
    """The calls a simulator received on its share endpoints (token endpoints are not share calls)."""
    return [f"{call.method} {call.path}" for call in list(sim.requests) if SHARE_ENDPOINT.search(call.path)]
