"""Hostile requests as bytes on the wire, through the local stack's gateway (template routes, function workers).

Where the transport matters: bytes that are not UTF-8 reach the function base64-encoded, media types are the
client's header, paths and query strings arrive percent-encoded, header values are whatever bytes the client sends.
Each case checks the contract of tests/adversarial/contract.py (no 5xx, no "Traceback", the one error shape, no share
call when the input is refused). The classes:

15. test_raw_bodies_through_the_gateway: bodies that are not UTF-8 (Latin-1, UTF-16, UTF-32, overlong or
    surrogate sequences, gzip), raw NUL, 64 KiB and one byte more, nesting 32,000 deep -> 400 / 413; exactly 64 KiB
    is accepted.
16. test_media_types_through_the_gateway: the valid body under another Content-Type -> 400 malformed_json;
    `application/json` with parameters, in any case -> accepted.
17. test_paths_and_queries_through_the_gateway: KDocs file tokens with encoded slashes, dots, NUL, `#`, `?`,
    Unicode, invalid UTF-8 in the path; Unicode digits, repeated keys, invalid UTF-8, huge values in the list's
    query -> 422 naming the parameter.
18. test_idempotency_key_bytes_through_the_gateway: over 255 characters -> 422; bytes beyond ASCII (read as Latin-1
    by HTTP) -> 422 or accepted, never 5xx.
19. test_a_header_sent_twice_*: API Gateway joins a repeated header's values with commas (payload 2.0): a Content-Type
    sent twice is no media type -> 400; an Idempotency-Key sent as `a` and `b` is the key `a,b`.
"""

from __future__ import annotations

import gzip
import http.client
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.adversarial.contract import (
    ACCEPTED,
    INVALID,
    MALFORMED,
    TOO_LARGE,
    VALID_BODIES,
    Answer,
    Expected,
    check,
    dumps,
    refused_for_caller,
    share_calls,
)
from tests.leaks import observe
from tests.signing import sigv4_headers

MAX_BODY = 64 * 1024
TARGETS = {
    "123pan POST": ("POST", "/v1/shares/123pan"),
    "123pan PATCH": ("PATCH", "/v1/shares/123pan"),
    "kdocs POST": ("POST", "/v1/shares/kdocs"),
}
Headers = dict[str, str | bytes]
HeaderLines = Headers | list[tuple[str, str | bytes]]
JSON: Headers = {"Content-Type": "application/json"}
PAN123_JSON = dumps(VALID_BODIES["123pan POST"])
KDOCS_JSON = dumps(VALID_BODIES["kdocs POST"])


def send(stack: Any, method: str, target: str, headers: HeaderLines, body: bytes = b"") -> Answer:
    """One request exactly as given: the target as is (already percent-encoded), header values as bytes, a header
    given as pairs sent as often as it is listed; signed (SigV4, the local admin) over the target and body, as the
    template's IAM authorization wants."""
    url = urlsplit(stack.gateway.url)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
    try:
        connection.putrequest(method, target, skip_host=False, skip_accept_encoding=True)
        lines = list(headers.items()) if isinstance(headers, dict) else list(headers)
        for name, value in lines + list(sigv4_headers(method, f"{stack.gateway.url}{target}", body).items()):
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        payload = response.read()
    finally:
        connection.close()
    observe(payload)
    answer_headers = {name.lower(): value for name, value in response.getheaders()}
    return Answer(response.status, answer_headers, payload.decode(errors="replace"))


def run(
    stack: Any,
    route: str,
    request: tuple[str, str, HeaderLines, bytes],
    expected: Expected,
    field: str | None = None,
) -> Answer:
    for sim in stack.sims.values():
        sim.requests.clear()
    answer = send(stack, *request)
    check(answer, route, expected, field)
    if refused_for_caller(expected):
        calls = [call for sim in stack.sims.values() for call in share_calls(sim)]
        assert calls == [], f"a refused request reached the provider: {calls}"
    return answer


def padded(text: str, size: int) -> bytes:
    return (text[:-1] + " " * (size - len(text.encode())) + "}").encode()


# 15. raw bodies ----------------------------------------------------------------------------------------------------

# The same settings as an HTML form would post them.
FORM = b"name=%E6%8A%A5%E5%91%8A&expire_days=7&file_ids=1"
LATIN1_NAME = '{"name": "café", "expire_days": 7, "file_ids": [1]}'
RAW_BODIES: list[tuple[str, str, Headers, bytes, Expected]] = [
    ("123pan POST", "invalid-utf8", JSON, b'{"name": "\xff\xfe", "expire_days": 7, "file_ids": [1]}', MALFORMED),
    ("123pan POST", "latin1", JSON, LATIN1_NAME.encode("latin-1"), MALFORMED),
    (
        "123pan POST",
        "latin1-declared",
        {"Content-Type": "application/json; charset=iso-8859-1"},
        LATIN1_NAME.encode("latin-1"),
        MALFORMED,
    ),
    ("123pan POST", "utf16-with-bom", JSON, PAN123_JSON.encode("utf-16"), MALFORMED),
    (
        "123pan POST",
        "utf16-declared",
        {"Content-Type": "application/json; charset=utf-16"},
        PAN123_JSON.encode("utf-16"),
        MALFORMED,
    ),
    ("kdocs POST", "utf32", JSON, KDOCS_JSON.encode("utf-32"), MALFORMED),
    ("kdocs POST", "overlong-slash", JSON, b'{"file_token": "a\xc0\xafb", "permission": "read"}', MALFORMED),
    (
        "123pan POST",
        "utf8-encoded-surrogate",
        JSON,
        b'{"name": "\xed\xa0\x80", "expire_days": 7, "file_ids": [1]}',
        MALFORMED,
    ),
    ("123pan PATCH", "truncated-utf8", JSON, b'{"share_ids": [1], "traffic_switch": 2, "x": "\xe6\xb5"}', MALFORMED),
    ("123pan POST", "raw-nul-in-a-string", JSON, b'{"name": "a\x00", "expire_days": 7, "file_ids": [1]}', MALFORMED),
    ("123pan POST", "form-encoded", {"Content-Type": "application/x-www-form-urlencoded"}, FORM, MALFORMED),
    ("kdocs POST", "gzip", JSON | {"Content-Encoding": "gzip"}, gzip.compress(KDOCS_JSON.encode()), MALFORMED),
    ("123pan POST", "64KiB+1", JSON, padded(PAN123_JSON, MAX_BODY + 1), TOO_LARGE),
    ("kdocs POST", "64KiB+1", JSON, padded(KDOCS_JSON, MAX_BODY + 1), TOO_LARGE),
    ("123pan PATCH", "1MiB", JSON, b"[" * (1024 * 1024), TOO_LARGE),
    ("123pan POST", "32000-brackets", JSON, b"[" * 32000 + b"]" * 32000, MALFORMED),
    ("kdocs POST", "10000-objects", JSON, b'{"a":' * 10000 + b"1" + b"}" * 10000, MALFORMED),
    ("123pan POST", "exactly-64KiB", JSON, padded(PAN123_JSON, MAX_BODY), ACCEPTED),
    ("kdocs POST", "exactly-64KiB", JSON, padded(KDOCS_JSON, MAX_BODY), ACCEPTED),
]


@pytest.mark.parametrize(
    ("route", "headers", "body", "expected"),
    [
        pytest.param(route, headers, body, expected, id=f"{route.replace(' ', '-')}:{name}")
        for route, name, headers, body, expected in RAW_BODIES
    ],
)
def test_raw_bodies_through_the_gateway(stack, route, headers, body, expected):
    run(stack, route, (*TARGETS[route], headers, body), expected)


# 16. media types ---------------------------------------------------------------------------------------------------

MEDIA_TYPES: list[tuple[str, Expected]] = [
    ("text/plain", MALFORMED),
    ("application/jsonx", MALFORMED),
    ("application/json-patch+json", MALFORMED),
    ("application/x-www-form-urlencoded", MALFORMED),
    ("multipart/form-data; boundary=x", MALFORMED),
    ("application/octet-stream", MALFORMED),
    ("application/json; charset=utf-8", ACCEPTED),
    ("APPLICATION/JSON", ACCEPTED),
    ("application/JSON; Charset=UTF-8", ACCEPTED),
]


@pytest.mark.parametrize("route", ["123pan POST", "kdocs POST"], ids=["123pan", "kdocs"])
@pytest.mark.parametrize(("content_type", "expected"), MEDIA_TYPES, ids=[name for name, _ in MEDIA_TYPES])
def test_media_types_through_the_gateway(stack, route, content_type, expected):
    body = dumps(VALID_BODIES[route]).encode()
    run(stack, route, (*TARGETS[route], {"Content-Type": content_type}, body), expected)


# 17. paths and query strings ---------------------------------------------------------------------------------------

KDOCS_PATHS = {
    "encoded-slash": "a%2Fb",
    "encoded-dot-dot": "%2e%2e",
    "dot-dot": "..",
    "dot-dot-encoded-slash": "..%2Fx",
    "latin-letter": "%C3%A9",
    "nul": "a%00b",
    "fragment": "777%23x",
    "query": "777%3Faccess_token%3Dz",
    "zero-width-space": "%E2%80%8B777",
    "129-letters": "x" * 129,
    "semicolon": "a;b",
    "invalid-utf8": "%FF",
    "trailing-space": "777%20",
    "backslash": "a%5Cb",
}
LIST_QUERIES = {
    "cursor-arabic-indic": "cursor=%D9%A1%D9%A2%D9%A3",
    "cursor-fullwidth": "cursor=%EF%BC%91%EF%BC%92%EF%BC%93",
    "limit-fullwidth": "limit=%EF%BC%91%EF%BC%90",
    "limit-devanagari": "limit=%E0%A5%A7%E0%A5%A6",
    "limit-plus": "limit=%2B10",
    "repeated-limit": "limit=10&limit=20",
    "cursor-invalid-utf8": "cursor=%FF",
    "cursor-2**63": f"cursor={2**63}",
    "cursor-8000-digits": "cursor=" + "1" * 8000,
    "limit-nul": "limit=1%000",
}


def path_cases() -> list[Any]:
    cases = []
    for name, segment in KDOCS_PATHS.items():
        for method, route in (("GET", "kdocs GET"), ("DELETE", "kdocs DELETE")):
            request = (method, f"/v1/shares/kdocs/{segment}")
            cases.append(pytest.param(route, request, "file_token", id=f"{method}-kdocs:{name}"))
    for name, query in LIST_QUERIES.items():
        field = query.split("=", 1)[0]
        cases.append(pytest.param("123pan GET", ("GET", f"/v1/shares/123pan?{query}"), field, id=f"list:{name}"))
    return cases


@pytest.mark.parametrize(("route", "request_line", "field"), path_cases())
def test_paths_and_queries_through_the_gateway(stack, route, request_line, field):
    run(stack, route, (*request_line, {}, b""), INVALID, field)


# 18. Idempotency-Key bytes -----------------------------------------------------------------------------------------

KEYS: dict[str, tuple[str | bytes, str]] = {
    "256-ascii": ("k" * 256, "refused"),
    "8000-ascii": ("k" * 8000, "refused"),
    "latin1-bytes": (b"key-\xe9\xff", "either"),
    "utf8-bytes": ("键".encode(), "either"),
    "control-byte": (b"key\x01", "either"),
}


@pytest.mark.parametrize("route", ["123pan POST", "kdocs POST"], ids=["123pan", "kdocs"])
@pytest.mark.parametrize(("key", "expected"), list(KEYS.values()), ids=list(KEYS))
def test_idempotency_key_bytes_through_the_gateway(stack, route, key, expected):
    headers: Headers = JSON | {"Idempotency-Key": key}
    for sim in stack.sims.values():
        sim.requests.clear()
    answer = send(stack, *TARGETS[route], headers, dumps(VALID_BODIES[route]).encode())

    if expected == "either" and answer.status < 400:
        check(answer, route, ACCEPTED)
        return
    check(answer, route, INVALID)
    fields = [detail["field"] for detail in answer.json()["error"]["details"]]
    assert any("idempotency" in field.lower() for field in fields), fields
    assert [call for sim in stack.sims.values() for call in share_calls(sim)] == []


# 19. headers sent twice --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["123pan POST", "kdocs POST"], ids=["123pan", "kdocs"])
def test_a_header_sent_twice_reaches_the_function_joined_with_a_comma(stack, route):
    """As deployed, the function reads "application/json,application/json": no media type, so the body is refused."""
    twice: HeaderLines = [("Content-Type", "application/json"), ("Content-Type", "application/json")]
    run(stack, route, (*TARGETS[route], twice, dumps(VALID_BODIES[route]).encode()), MALFORMED)


def test_an_idempotency_key_sent_twice_is_one_key_of_both_values(stack):
    """`a` and `b` reach the function as the key `a,b`, as API Gateway joins them: the same key as `a,b` sent once."""
    route, body = "123pan POST", dumps(VALID_BODIES["123pan POST"]).encode()
    sim = stack.sims["pan123"]
    sim.requests.clear()

    twice = [*JSON.items(), ("Idempotency-Key", "twice-a"), ("Idempotency-Key", "b")]
    first = send(stack, *TARGETS[route], twice, body)
    again = send(stack, *TARGETS[route], JSON | {"Idempotency-Key": "twice-a,b"}, body)

    check(first, route, ACCEPTED)
    assert again.json() == first.json(), "the key sent once as `a,b` is another key than `a` and `b` sent twice"
    assert len(share_calls(sim)) == 1
