"""Hostile requests to the API handlers, in-process, with real-shaped HTTP API events, against moto and the simulators.

One test function per defect class, one parametrized case per attempt; every case checks the contract of
tests/adversarial/contract.py (no 5xx, no "Traceback", the one error shape, no share call when the input is refused):

1. test_malformed_json: not JSON, not an object, nested 1,000 to 100,000 levels deep, not UTF-8 -> 400
   malformed_json (100,000 levels cannot fit in 64 KiB: 413 request_too_large is as good an answer).
2. test_only_application_json_is_json: any other media type -> 400 malformed_json; `application/json` with
   parameters, in any case, is JSON.
3. test_body_over_64_kib_is_413: over 64 * 1024 bytes (UTF-8 bytes, after base64) -> 413; exactly 64 KiB is accepted.
4. test_lone_surrogates_are_422: "\\ud800", "\\udfff", a high surrogate before a non-low one, in 123pan and KDocs
   text fields -> 422 naming the field.
5. test_blank_text_is_422: white space, zero-width and other invisible characters alone (U+200B/C/D, U+2060,
   U+FEFF, U+00A0, U+3000, controls, combining marks) in name/password -> 422 naming the field.
6. test_text_length_limits: name at most 255 characters, password at most 64 (code points, not bytes) -> 422 beyond.
7. test_integers_beyond_64_bits_are_422: 2**63 and above, below -2**63, 5,000 digits, in ids, traffic_limit,
   expire_days/period, share_ids -> 422 naming the field; 2**63 - 1 passes validation.
8. test_numbers_must_be_json_integers: floats, bools, strings, lists where an integer (or a bool) is required -> 422.
9. test_only_ascii_digits_are_numbers: Unicode Nd digits (Arabic-Indic, fullwidth, Devanagari, mathematical...),
   superscripts, signs, underscores, in fileIDList/shareIdList and in the list's limit/cursor -> 422.
10. test_one_setting_one_spelling: a field and its provider twin in one body, even when they agree -> 422.
11. test_unknown_fields_are_422: fields the route does not know (typos, case variants, provider internals) -> 422.
12. test_hostile_file_token_is_422_before_any_call: path tricks in KDocs' file_token, in the body and in the path
    (encoded and with sub-delimiters left raw) -> 422 naming file_token; 128 letters reach the provider.
13. test_idempotency_key_abuse: over 255 characters or empty -> 422; 1 to 255 characters of any script -> accepted
    and idempotent; control characters -> 422 or accepted and idempotent, never 5xx.
14. test_what_else_a_hostile_caller_tries: huge and repeated query keys, NUL, 10,000-element arrays, nesting inside
    a field, 1e309/NaN/Infinity/-0, duplicate JSON keys, surrogate, huge and many unknown keys, no body at all.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from tests.adversarial.conftest import Api
from tests.adversarial.contract import (
    ACCEPTED,
    BODY_ROUTES,
    CREATE_ROUTES,
    INVALID,
    MALFORMED,
    PATH_SUB_DELIMS,
    PROVIDER_NOT_FOUND,
    TOO_LARGE,
    VALID_BODIES,
    Body,
    Encoded,
    Expected,
    Raw,
    body_event,
    body_with,
    check,
    dumps,
    path_event,
    query_event,
    refused_for_caller,
)

KIB = 1024
MAX_BODY = 64 * KIB
EITHER_TOO_BIG_OR_TOO_DEEP = frozenset({MALFORMED, TOO_LARGE})
REFUSED_SOMEHOW = frozenset({MALFORMED, INVALID})


def case(route: str, event: dict[str, Any], expected: Expected, field: str | None, name: str) -> Any:
    return pytest.param(route, event, expected, field, id=f"{route.replace(' ', '-')}:{name}")


def run(api: Api, route: str, event: dict[str, Any], expected: Expected, field: str | None) -> None:
    if not refused_for_caller(expected):
        check(api.send(route, event), route, expected, field)
        return
    answer = api.send_refused(route, event)
    check(answer, route, expected, field)
    assert api.share_calls(route) == [], "a refused request reached the provider"


CASE_ARGS = ("route", "event", "expected", "field")


# 1. malformed JSON -------------------------------------------------------------------------------------------------

NOT_JSON: dict[str, tuple[Body, Expected]] = {
    "not-json": ("{not json", MALFORMED),
    "single-quotes": ("{'name': 'a'}", MALFORMED),
    "trailing-comma": ('{"name": "a",}', MALFORMED),
    "trailing-garbage": ('{"name": "a"} x', MALFORMED),
    "two-documents": ("{} {}", MALFORMED),
    "whitespace-only": (" \n\t ", MALFORMED),
    "array": ("[1, 2]", MALFORMED),
    "array-of-the-object": ('[{"name": "a"}]', MALFORMED),
    "string": ('"text"', MALFORMED),
    "null": ("null", MALFORMED),
    "number": ("42", MALFORMED),
    "raw-nul-in-a-string": ('{"name": "a\x00b"}', MALFORMED),
    "raw-newline-in-a-string": ('{"name": "a\nb"}', MALFORMED),
    "1000-unclosed-braces": ('{"a":' * 1000, MALFORMED),
    "1000-brackets": ("[" * 1000 + "]" * 1000, MALFORMED),
    "10000-objects": ('{"a":' * 10000 + "1" + "}" * 10000, MALFORMED),
    "32000-brackets": ("[" * 32000 + "]" * 32000, MALFORMED),  # 64,000 bytes: within the size limit
    "100000-brackets": ("[" * 100_000 + "]" * 100_000, EITHER_TOO_BIG_OR_TOO_DEEP),
    "base64-not-base64": (Encoded("!!not base64!!"), MALFORMED),
    "base64-of-non-utf8": (Encoded(b"\xff\xfe{\x00}\x00"), MALFORMED),
    "base64-of-latin1-json": (Encoded('{"name": "café", "expire_days": 7}'.encode("latin-1")), MALFORMED),
    "base64-of-utf16-json": (Encoded('{"name": "a"}'.encode("utf-16")), MALFORMED),
    "base64-of-utf8-encoded-surrogate": (Encoded(b'{"name": "\xed\xa0\x80"}'), MALFORMED),
}


def malformed_cases() -> Iterator[Any]:
    for route in BODY_ROUTES:
        for name, (body, expected) in NOT_JSON.items():
            yield case(route, body_event(route, body), expected, None, name)


@pytest.mark.parametrize(CASE_ARGS, list(malformed_cases()))
def test_malformed_json(api, route, event, expected, field):
    run(api, route, event, expected, field)


# 2. media types ----------------------------------------------------------------------------------------------------

NOT_JSON_TYPES = [
    "application/jsonx",
    "application/jsonx; charset=utf-8",
    "text/plain",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "text/json",
    "application/xml",
    "application/json, text/plain",
    "application/*",
    "json",
]
JSON_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "APPLICATION/JSON",
    "Application/Json;Charset=UTF-8",
    'application/json ; charset="utf-8"',
]


def media_type_cases() -> Iterator[Any]:
    for route in BODY_ROUTES:
        for content_type in NOT_JSON_TYPES:
            event = body_event(route, VALID_BODIES[route], content_type=content_type)
            yield case(route, event, MALFORMED, None, content_type)
    for route in CREATE_ROUTES:
        for content_type in JSON_TYPES:
            event = body_event(route, VALID_BODIES[route], content_type=content_type)
            yield case(route, event, ACCEPTED, None, content_type)


@pytest.mark.parametrize(CASE_ARGS, list(media_type_cases()))
def test_only_application_json_is_json(api, route, event, expected, field):
    run(api, route, event, expected, field)


# 3. body size ------------------------------------------------------------------------------------------------------


def padded(route: str, size: int) -> str:
    """The route's valid body, padded with white space to exactly `size` UTF-8 bytes."""
    text = dumps(VALID_BODIES[route])
    return text[:-1] + " " * (size - len(text.encode())) + "}"


WIDE_TEXT = "测" * 22_000  # 66,000 UTF-8 bytes in 22,000 characters


def size_cases() -> Iterator[Any]:
    wide = {
        "123pan POST": body_with("123pan POST", name=WIDE_TEXT),
        "123pan PATCH": VALID_BODIES["123pan PATCH"] | {"note": WIDE_TEXT},
        "kdocs POST": body_with("kdocs POST", permission=WIDE_TEXT),
    }
    for route in BODY_ROUTES:
        yield case(route, body_event(route, padded(route, MAX_BODY + 1)), TOO_LARGE, None, "64KiB+1")
        yield case(route, body_event(route, padded(route, 1024 * KIB)), TOO_LARGE, None, "1MiB")
        yield case(route, body_event(route, wide[route]), TOO_LARGE, None, "66000-bytes-in-22000-characters")
        encoded = Encoded(padded(route, MAX_BODY + 1).encode())
        yield case(route, body_event(route, encoded), TOO_LARGE, None, "base64-of-64KiB+1")
    for route in CREATE_ROUTES:
        yield case(route, body_event(route, padded(route, MAX_BODY)), ACCEPTED, None, "exactly-64KiB")
        encoded = Encoded(padded(route, 60 * KIB).encode())  # 80 KiB once encoded: the decoded size counts
        yield case(route, body_event(route, encoded), ACCEPTED, None, "base64-of-60KiB")


@pytest.mark.parametrize(CASE_ARGS, list(size_cases()))
def test_body_over_64_kib_is_413(api, route, event, expected, field):
    run(api, route, event, expected, field)


# 4. lone surrogates ------------------------------------------------------------------------------------------------

SURROGATES = {
    "high": "\ud800",
    "low": "\udfff",
    "high-then-ascii": "\ud800x",
    "ascii-then-high": "a\udbff",
    "low-then-high": "\udc00\ud800",
    "truncated-emoji": "报告\ud83d",
}
KDOCS_TEXT_FIELDS = ("file_token", "permission", "status", "range")


def surrogate_cases() -> Iterator[Any]:
    route = "123pan POST"
    for field in ("name", "shareName", "password", "sharePwd"):
        for name, value in SURROGATES.items():
            yield case(route, body_event(route, body_with(route, **{field: value})), INVALID, field, f"{field}-{name}")
    for field in ("name", "sharePwd"):
        yield case(
            route, body_event(route, body_with(route, **{field: "\ud83d\ude00"})), ACCEPTED, None, f"{field}-pair"
        )
    route = "kdocs POST"
    for field in KDOCS_TEXT_FIELDS:
        for name in ("high", "high-then-ascii"):
            event = body_event(route, body_with(route, **{field: SURROGATES[name]}))
            yield case(route, event, INVALID, field, f"{field}-{name}")
    # The field is the provider's list; where its detail points (the list or the body) is not pinned here.
    event = body_event(route, body_with(route, ext_perm_list=["\ud800"]))
    yield case(route, event, INVALID, None, "ext_perm_list-high")


@pytest.mark.parametrize(CASE_ARGS, list(surrogate_cases()))
def test_lone_surrogates_are_422(api, route, event, expected, field):
    run(api, route, event, expected, field)


# 5. blank text -----------------------------------------------------------------------------------------------------

BLANKS = {
    "space": " ",
    "tab-newline": "\t\n\r ",
    "zwsp": "\u200b",
    "zwnj": "\u200c",
    "zwj": "\u200d",
    "word-joiner": "\u2060",
    "bom": "\ufeff",
    "nbsp": "\u00a0",
    "ideographic-space": "\u3000",
    "zero-widths": "\u200b\u200c\u200d\u2060\ufeff",
    "spaces-and-zero-widths": "\u00a0\u3000 \u200b\u3000\u00a0",
    "combining-acute": "\u0301",
    "nul": "\u0000",
    "soft-hyphen": "\u00ad",
    "rtl-override": "\u202e",
    "line-separator": "\u2028",
    "mongolian-vowel-separator": "\u180e",
    "combining-grapheme-joiner": "\u034f",
}
TWIN_SAMPLE = ("zwsp", "bom", "ideographic-space", "zero-widths", "spaces-and-zero-widths")


def blank_cases() -> Iterator[Any]:
    route = "123pan POST"
    for field, names in (("name", BLANKS), ("password", BLANKS), ("shareName", TWIN_SAMPLE), ("sharePwd", TWIN_SAMPLE)):
        for name in names:
            event = body_event(route, body_with(route, **{field: BLANKS[name]}))
            yield case(route, event, INVALID, field, f"{field}-{name}")
    # Something visible among the invisible characters shows: not blank.
    for field, value in (("name", "\u3000报告\u200b"), ("password", "\u200bpw\u00a0")):
        yield case(route, body_event(route, body_with(route, **{field: value})), ACCEPTED, None, f"{field}-visible")


@pytest.mark.parametrize(CASE_ARGS, list(blank_cases()))
def test_blank_text_is_422(api, route, event, expected, field):
    run(api, route, event, expected, field)


# 6. text lengths ---------------------------------------------------------------------------------------------------

LENGTHS: list[tuple[str, str, Expected, str]] = [
    ("name", "a" * 255, ACCEPTED, "255-ascii"),
    ("name", "a" * 256, INVALID, "256-ascii"),
    ("name", "测" * 255, ACCEPTED, "255-cjk"),
    ("name", "测" * 256, INVALID, "256-cjk"),
    ("name", "\U0001f600" * 255, ACCEPTED, "255-emoji"),
    ("name", "\U0001f600" * 256, INVALID, "256-emoji"),
    ("name", "a" * 10_000, INVALID, "10000-ascii"),
    ("shareName", "a" * 256, INVALID, "256-ascii"),
    ("password", "p" * 64, ACCEPTED, "64-ascii"),
    ("password", "p" * 65, INVALID, "65-ascii"),
    ("password", "密" * 64, ACCEPTED, "64-cjk"),
    ("password", "密" * 65, INVALID, "65-cjk"),
    ("sharePwd", "p" * 65, INVALID, "65-ascii"),
    ("sharePwd", "p" * 5_000, INVALID, "5000-ascii"),
]


def length_cases() -> Iterator[Any]:
    route = "123pan POST"
    for field, value, expected, name in LENGTHS:
        event = body_event(route, body_with(route, **{field: value}))
        yield case(route, event, expected, None if expected == ACCEPTED else field, f"{field}-{name}")


@pytest.mark.parametrize(CASE_ARGS, list(length_cases()))
def test_text_length_limits(api, route, event, expected, field):
    run(api, route, event, expected, field)


# 7. integers beyond 64 bits ----------------------------------------------------------------------------------------

BIG_INTEGERS = {
    "2**63": str(2**63),
    "2**64": str(2**64),
    "-2**63-1": str(-(2**63) - 1),
    "5000-digits": "9" * 5000,
}
# (route, field, how the literal is written: a number, a list of one, the docs' comma string)
INTEGER_FIELDS = [
    ("123pan POST", "file_ids", "list"),
    ("123pan POST", "fileIDList", "string"),
    ("123pan POST", "expire_days", "number"),
    ("123pan POST", "shareExpire", "number"),
    ("123pan POST", "traffic_limit", "number"),
    ("123pan POST", "trafficLimit", "number"),
    ("123pan POST", "traffic_switch", "number"),
    ("123pan PATCH", "share_ids", "list"),
    ("123pan PATCH", "shareIdList", "string"),
    ("123pan PATCH", "traffic_limit", "number"),
    ("kdocs POST", "expire_days", "number"),
    ("kdocs POST", "period", "number"),
]


def written(literal: str, how: str) -> Any:
    return {"number": Raw(literal), "list": [Raw(literal)], "string": literal}[how]


def big_integer_cases() -> Iterator[Any]:
    for route, field, how in INTEGER_FIELDS:
        for name, literal in BIG_INTEGERS.items():
            event = body_event(route, body_with(route, **{field: written(literal, how)}))
            yield case(route, event, INVALID, field, f"{field}-{name}")
    route, int64_max = "123pan POST", Raw(str(2**63 - 1))
    yield case(route, body_event(route, body_with(route, traffic_limit=int64_max)), ACCEPTED, None, "limit-2**63-1")
    # a valid id the simulator does not have: validation lets it through, the provider says no such file
    event = body_event(route, body_with(route, file_ids=[int64_max]))
    yield case(route, event, PROVIDER_NOT_FOUND, None, "file_ids-2**63-1")


@pytest.mark.parametrize(CASE_ARGS, list(big_integer_cases()))
def test_integers_beyond_64_bits_are_422(api, route, event, expected, field):
    run(api, route, event, expected, field)


# 8. number types ---------------------------------------------------------------------------------------------------

WRONG_TYPES: list[tuple[str, str, Any, str]] = [
    ("123pan POST", "expire_days", 7.0, "float-7.0"),
    ("123pan POST", "expire_days", 7.5, "float-7.5"),
    ("123pan POST", "expire_days", True, "true"),
    ("123pan POST", "expire_days", "7", "string"),
    ("123pan POST", "expire_days", [7], "list"),
    ("123pan POST", "shareExpire", Raw("1e0"), "exponent"),
    ("123pan POST", "file_ids", [1.0], "float-element"),
    ("123pan POST", "file_ids", [True], "true-element"),
    ("123pan POST", "file_ids", ["1"], "string-element"),
    ("123pan POST", "file_ids", {"0": 1}, "object"),
    ("123pan POST", "fileIDList", 14713526, "bare-number"),
    ("123pan POST", "fileIDList", True, "true"),
    ("123pan POST", "traffic_limit", 1.5, "float"),
    ("123pan POST", "traffic_limit", "1024", "string"),
    ("123pan POST", "traffic_limit", False, "false"),
    ("123pan POST", "trafficLimit", Raw("1e3"), "exponent"),
    ("123pan POST", "traffic_switch", 2.0, "float"),
    ("123pan POST", "traffic_switch", True, "true"),
    ("123pan POST", "traffic_limit_switch", "1", "string"),
    ("123pan PATCH", "share_ids", [87187530.0], "float-element"),
    ("123pan PATCH", "share_ids", ["87187530"], "string-element"),
    ("123pan PATCH", "share_ids", [True], "true-element"),
    ("123pan PATCH", "traffic_switch", 1.0, "float"),
    ("kdocs POST", "period", 7.0, "float"),
    ("kdocs POST", "period", "7", "string"),
    ("kdocs POST", "period", True, "true"),
    ("kdocs POST", "reset", "true", "string"),
    ("kdocs POST", "reset", 1, "one"),
    ("kdocs POST", "allow_comment", "false", "string"),
    ("kdocs POST", "allow_comment", 0, "zero"),
]


def wrong_type_cases() -> Iterator[Any]:
    for route, field, value, name in WRONG_TYPES:
        yield case(route, body_event(route, body_with(route, **{field: value})), INVALID, field, f"{field}-{name}")


@pytest.mark.parametrize(CASE_ARGS, list(wrong_type_cases()))
def test_numbers_must_be_json_integers(api, route, event, expected, field):
    run(api, route, event, expected, field)


# 9. ASCII digits only ----------------------------------------------------------------------------------------------

NOT_ASCII_IDS = {
    "arabic-indic": "\u0661,\u0662",
    "arabic-indic-run": "\u0661\u0662\u0663",
    "extended-arabic-indic": "\u06f1\u06f2",
    "fullwidth": "\uff11\uff12\uff13",
    "devanagari": "१२",
    "bengali": "১",
    "thai": "๑",
    "math-bold": "\U0001d7cf\U0001d7d0",
    "circled": "①",
    "superscript": "²",
    "mixed": "1,\u0662",
    "fullwidth-after-a-known-id": "14713526,\uff11",
    "plus-sign": "+1",
    "underscore": "1_000",
}
NOT_ASCII_QUERIES = {
    "cursor-arabic-indic": ("cursor", "\u0661\u0662\u0663"),
    "cursor-fullwidth": ("cursor", "\uff11\uff12\uff13"),
    "cursor-math-bold": ("cursor", "\U0001d7cf\U0001d7d0\U0001d7d1"),
    "cursor-devanagari": ("cursor", "१२३"),
    "cursor-superscript": ("cursor", "²³"),
    "cursor-plus": ("cursor", "+123"),
    "cursor-underscore": ("cursor", "1_2"),
    "limit-fullwidth": ("limit", "\uff11\uff10"),
    "limit-arabic-indic": ("limit", "\u0661\u0660"),
    "limit-math-bold": ("limit", "\U0001d7cf\U0001d7ce"),
    "limit-devanagari": ("limit", "१०"),
    "limit-plus": ("limit", "+10"),
    "limit-underscore": ("limit", "1_0"),
    "limit-float": ("limit", "10.0"),
    "limit-exponent": ("limit", "1e1"),
    "limit-hex": ("limit", "0x10"),
    "limit-leading-space": ("limit", " 10"),
    "limit-trailing-space": ("limit", "10 "),
}


def digit_cases() -> Iterator[Any]:
    for name, ids in NOT_ASCII_IDS.items():
        route = "123pan POST"
        yield case(route, body_event(route, body_with(route, fileIDList=ids)), INVALID, "fileIDList", f"file-{name}")
    for name in ("arabic-indic", "fullwidth"):
        route = "123pan PATCH"
        event = body_event(route, body_with(route, shareIdList=NOT_ASCII_IDS[name]))
        yield case(route, event, INVALID, "shareIdList", f"share-{name}")
    for name, (key, value) in NOT_ASCII_QUERIES.items():
        yield case("123pan GET", query_event([(key, value)]), INVALID, key, name)


@pytest.mark.parametrize(CASE_ARGS, list(digit_cases()))
def test_only_ascii_digits_are_numbers(api, route, event, expected, field):
    run(api, route, event, expected, field)


# 10. two spellings of one setting ----------------------------------------------------------------------------------

SPELLINGS: list[tuple[str, dict[str, Any], str]] = [
    ("123pan POST", {"name": "报告", "shareName": "报告"}, "name-shareName"),
    ("123pan POST", {"name": "a", "shareName": "b"}, "name-shareName-disagree"),
    ("123pan POST", {"expire_days": 7, "shareExpire": 7}, "expire_days-shareExpire"),
    ("123pan POST", {"file_ids": [1, 2], "fileIDList": "1,2"}, "file_ids-fileIDList"),
    ("123pan POST", {"password": "pw", "sharePwd": "pw"}, "password-sharePwd"),
    ("123pan POST", {"traffic_switch": 2, "trafficSwitch": 2}, "traffic_switch-trafficSwitch"),
    ("123pan POST", {"traffic_limit_switch": 1, "trafficLimitSwitch": 1}, "traffic_limit_switch-twin"),
    ("123pan POST", {"traffic_limit": 10, "trafficLimit": 10}, "traffic_limit-trafficLimit"),
    ("123pan PATCH", {"share_ids": [87187530], "shareIdList": [87187530]}, "share_ids-shareIdList"),
    ("123pan PATCH", {"traffic_switch": 2, "trafficSwitch": 2}, "traffic_switch-trafficSwitch"),
    ("123pan PATCH", {"traffic_limit": 10, "trafficLimit": 10}, "traffic_limit-trafficLimit"),
    ("kdocs POST", {"allow_comment": True, "ext_perm_list": ["comment"]}, "allow_comment-ext_perm_list"),
    ("kdocs POST", {"allow_comment": False, "ext_perm_list": []}, "allow_comment-ext_perm_list-empty"),
    ("kdocs POST", {"expire_days": 7, "period": 7}, "expire_days-period"),
    ("kdocs POST", {"expire_days": 7, "period": 30}, "expire_days-period-disagree"),
]


def spelling_cases() -> Iterator[Any]:
    for route, both, name in SPELLINGS:
        body = {key: value for key, value in VALID_BODIES[route].items() if key not in both} | both
        # both spellings are named in the case: either may be the detail's field
        yield case(route, body_event(route, body), INVALID, "|".join(both), name)


@pytest.mark.parametrize(CASE_ARGS, list(spelling_cases()))
def test_one_setting_one_spelling(api, route, event, expected, field):
    answer = api.send_refused(route, event)
    check(answer, route, expected)
    fields = {detail["field"] for detail in answer.json()["error"]["details"]}
    assert fields & set(field.split("|")), f"neither of {field} named in {fields}"
    assert api.share_calls(route) == [], "a refused request reached the provider"


# 11. unknown fields ------------------------------------------------------------------------------------------------

UNKNOWN_FIELDS: list[tuple[str, str]] = [
    ("123pan POST", "expiry_days"),
    ("123pan POST", "Name"),
    ("123pan POST", "SHARENAME"),
    ("123pan POST", "share_name"),
    ("123pan POST", "fileIdList"),
    ("123pan POST", "file_ids "),
    ("123pan POST", "__proto__"),
    ("123pan POST", "access_token"),
    ("123pan POST", "shareId"),
    ("123pan POST", "file_token"),
    ("123pan PATCH", "name"),
    ("123pan PATCH", "shareIDList"),
    ("123pan PATCH", "expire_days"),
    ("kdocs POST", "sharePwd"),
    ("kdocs POST", "file-token"),
    ("kdocs POST", "access_token"),
    ("kdocs POST", "Permission"),
    ("kdocs POST", "link_url"),
]


def unknown_field_cases() -> Iterator[Any]:
    for route, field in UNKNOWN_FIELDS:
        event = body_event(route, VALID_BODIES[route] | {field: 1})
        yield case(route, event, INVALID, field, field.strip() or "empty")


@pytest.mark.parametrize(CASE_ARGS, list(unknown_field_cases()))
def test_unknown_fields_are_422(api, route, event, expected, field):
    run(api, route, event, expected, field)


# 12. KDocs file_token path tricks ----------------------------------------------------------------------------------

HOSTILE_TOKENS = {
    "dot-dot-slash": "../x",
    "dot-dot": "..",
    "dot": ".",
    "slash": "a/b",
    "encoded-slash": "%2F",
    "encoded-slash-inside": "a%2Fb",
    "query": "a?b",
    "fragment": "#",
    "fragment-after": "777#x",
    "query-param": "777&access_token=z",
    "semicolon": "777;x",
    "colon": "a:b",
    "backslash": "a\\b",
    "space": " ",
    "inner-space": "a b",
    "tab": "\t",
    "newline": "777\n",
    "nul": "777\x00",
    "129-letters": "x" * 129,
    "5000-letters": "x" * 5000,
    "latin-letter": "é",
    "cjk": "文件",
    "fullwidth-letter": "\uff21",
    "arabic-indic-digits": "\u0667\u0667\u0667",
    "zero-width-space": "777\u200b",
    "dot-inside": "a.b",
}


def file_token_cases() -> Iterator[Any]:
    for name, token in HOSTILE_TOKENS.items():
        route = "kdocs POST"
        yield case(route, body_event(route, body_with(route, file_token=token)), INVALID, "file_token", f"body-{name}")
        yield case("kdocs GET", path_event("kdocs GET", token), INVALID, "file_token", f"path-encoded-{name}")
        event = path_event("kdocs DELETE", token, safe=PATH_SUB_DELIMS)
        yield case("kdocs DELETE", event, INVALID, "file_token", f"path-raw-sub-delims-{name}")
    route = "kdocs POST"
    yield case(route, body_event(route, body_with(route, file_token="")), INVALID, "file_token", "body-empty")
    # 128 letters, digits, - and _ are a token: it reaches the provider, which has no such file
    longest = "x" * 64 + "-_" * 32
    yield case(route, body_event(route, body_with(route, file_token=longest)), PROVIDER_NOT_FOUND, None, "body-128")
    yield case("kdocs GET", path_event("kdocs GET", longest), PROVIDER_NOT_FOUND, None, "path-128")


@pytest.mark.parametrize(CASE_ARGS, list(file_token_cases()))
def test_hostile_file_token_is_422_before_any_call(api, route, event, expected, field):
    run(api, route, event, expected, field)


# 13. Idempotency-Key -----------------------------------------------------------------------------------------------

EITHER = "422 or accepted"
IDEMPOTENCY_KEYS: dict[str, tuple[str, str]] = {
    "256-ascii": ("k" * 256, "refused"),
    "10000-ascii": ("k" * 10_000, "refused"),
    "empty": ("", "refused"),
    "256-cjk": ("键" * 256, "refused"),
    "one-character": ("k", ACCEPTED),
    "255-ascii": ("k" * 255, ACCEPTED),
    "255-cjk": ("键" * 255, ACCEPTED),
    "255-emoji": ("\U0001f511" * 255, ACCEPTED),
    "nul": ("a\x00b", EITHER),
    "crlf-header-injection": ("a\r\nX-Injected: 1", EITHER),
    "tab": ("\t", EITHER),
    "space": (" ", EITHER),
    "del": ("\x7f", EITHER),
    "rtl-override": ("key\u202e", EITHER),
}


def creates(sim: Any) -> int:
    return sum(call.method == "POST" for call in sim.requests)


@pytest.mark.parametrize("route", ["123pan POST", "kdocs POST"], ids=["123pan", "kdocs"])
@pytest.mark.parametrize(("key", "expected"), list(IDEMPOTENCY_KEYS.values()), ids=list(IDEMPOTENCY_KEYS))
def test_idempotency_key_abuse(api, route, key, expected):
    event = body_event(route, VALID_BODIES[route], headers={"idempotency-key": key})
    first = api.send(route, event)

    if expected == "refused" or (expected == EITHER and first.status == 422):
        check(first, route, INVALID)
        fields = [detail["field"] for detail in first.json()["error"]["details"]]
        assert any("idempotency" in field.lower() for field in fields), fields
        assert api.share_calls(route) == [], "a refused request reached the provider"
        return
    check(first, route, ACCEPTED)
    again = api.send(route, event)
    check(again, route, ACCEPTED)
    assert again.json() == first.json(), "a retry with the same key answered another share"
    assert creates(api.sim(route)) == 1


# 14. what else a hostile caller tries ------------------------------------------------------------------------------


def raw_body(route: str, text: str, name: str, expected: Expected, field: str | None = None) -> Any:
    return case(route, body_event(route, text), expected, field, name)


def with_(route: str, label: str, expected: Expected, field: str | None = None, **fields: Any) -> Any:
    return case(route, body_event(route, body_with(route, **fields)), expected, field, label)


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def hostile_cases() -> Iterator[Any]:
    get, post, patch, kdocs = "123pan GET", "123pan POST", "123pan PATCH", "kdocs POST"
    # query strings: huge, repeated (API Gateway joins repeated keys with a comma), empty, NUL, beyond 64 bits
    yield case(get, query_event([("cursor", "1" * 10_000)]), INVALID, "cursor", "cursor-10000-digits")
    yield case(get, query_event([("limit", "x" * 10_000)]), INVALID, "limit", "limit-10000-characters")
    yield case(get, query_event([("limit", "10"), ("limit", "20")]), INVALID, "limit", "repeated-limit")
    yield case(get, query_event([("cursor", "1"), ("cursor", "2")]), INVALID, "cursor", "repeated-cursor")
    yield case(get, query_event([("limit", "")]), INVALID, "limit", "empty-limit")
    yield case(get, query_event([("limit", "10\x00")]), INVALID, "limit", "nul-in-limit")
    yield case(get, query_event([("cursor", "1\x00")]), INVALID, "cursor", "nul-in-cursor")
    yield case(get, query_event([("cursor", str(2**63))]), INVALID, "cursor", "cursor-2**63")
    yield case(get, query_event([("cursor", "9" * 20)]), INVALID, "cursor", "cursor-20-digits")
    yield case(get, query_event([("limit", "9" * 25)]), INVALID, "limit", "limit-25-digits")
    yield case(get, query_event([("limit", "-1")]), INVALID, "limit", "negative-limit")
    # NUL bytes in strings
    yield with_(post, "name-nul", INVALID, "name", name="\x00")
    yield with_(post, "password-nuls", INVALID, "password", password="\x00\x00")
    yield with_(kdocs, "permission-with-nul", INVALID, "permission", permission="read\x00")
    yield with_(kdocs, "status-with-nul", INVALID, "status", status="open\x00")
    # 10,000-element arrays
    yield with_(post, "file_ids-10000", INVALID, "file_ids", file_ids=[1] * 10_000)
    yield with_(post, "fileIDList-10000", INVALID, "fileIDList", fileIDList=",".join(["1"] * 10_000))
    yield with_(patch, "share_ids-10000", INVALID, "share_ids", share_ids=list(range(1, 10_001)))
    # nesting inside a field: a little is a wrong type, more than 8 levels is not a share request at all
    yield with_(post, "file_ids-nested-twice", INVALID, "file_ids", file_ids=[[1]])
    yield with_(post, "file_ids-nested-9-deep", MALFORMED, None, file_ids=nested(9))
    yield with_(post, "name-nested-objects", INVALID, "name", name={"a": {"b": {"c": "d"}}})
    yield with_(kdocs, "permission-in-a-list", INVALID, "permission", permission=["read"])
    yield with_(kdocs, "ext_perm_list-nested-9-deep", MALFORMED, None, ext_perm_list=nested(9))
    # numbers JSON can write and Python reads oddly; NaN and Infinity are not JSON
    yield with_(post, "expire_days-1e309", INVALID, "expire_days", expire_days=Raw("1e309"))
    yield with_(post, "traffic_limit-1e309", INVALID, "traffic_limit", traffic_limit=Raw("1e309"))
    yield with_(post, "traffic_limit-minus-1e309", INVALID, "traffic_limit", traffic_limit=Raw("-1e309"))
    yield with_(post, "expire_days-NaN", MALFORMED, None, expire_days=Raw("NaN"))
    yield with_(post, "traffic_limit-Infinity", MALFORMED, None, traffic_limit=Raw("Infinity"))
    yield with_(post, "traffic_limit-minus-Infinity", MALFORMED, None, traffic_limit=Raw("-Infinity"))
    yield with_(kdocs, "period-NaN", MALFORMED, None, period=Raw("NaN"))
    yield with_(post, "shareExpire-minus-0.0", INVALID, "shareExpire", shareExpire=Raw("-0.0"))
    yield with_(post, "file_ids-minus-0", INVALID, "file_ids", file_ids=[Raw("-0")])
    yield with_(post, "expire_days-7e0", INVALID, "expire_days", expire_days=Raw("7e0"))
    yield with_(post, "expire_days-minus-0-is-0", ACCEPTED, None, expire_days=Raw("-0"))
    # duplicate keys: one setting named twice (README: "One setting may be named once"), agreeing or not
    yield raw_body(post, '{"name": "a", "name": "b", "expire_days": 7, "file_ids": [1]}', "dup-name", REFUSED_SOMEHOW)
    yield raw_body(
        post, '{"name": "a", "expire_days": 7, "expire_days": 7, "file_ids": [1]}', "dup-agree", REFUSED_SOMEHOW
    )
    dup_permission = '{"file_token": "777", "permission": "read", "permission": "write"}'
    yield raw_body(kdocs, dup_permission, "dup-permission", REFUSED_SOMEHOW)
    dup_token = '{"file_token": "../x", "file_token": "777", "permission": "read"}'
    yield raw_body(kdocs, dup_token, "dup-file_token-hiding-a-path", REFUSED_SOMEHOW)
    yield raw_body(patch, '{"share_ids": [1], "traffic_switch": 1, "traffic_switch": 4}', "dup-switch", REFUSED_SOMEHOW)
    # keys: a lone surrogate, NUL, 30,000 characters, 2,000 of them
    yield raw_body(post, dumps(VALID_BODIES[post])[:-1] + ', "\\ud800": 1}', "surrogate-key", INVALID)
    yield raw_body(kdocs, dumps(VALID_BODIES[kdocs])[:-1] + ', "\\udfff\\ud800": 1}', "surrogate-key", INVALID)
    yield case(post, body_event(post, VALID_BODIES[post] | {"name\x00": 1}), INVALID, None, "nul-key")
    yield case(post, body_event(post, VALID_BODIES[post] | {"k" * 30_000: 1}), INVALID, None, "huge-key")
    many = VALID_BODIES[kdocs] | {f"k{index}": index for index in range(2_000)}
    yield case(kdocs, body_event(kdocs, many), INVALID, "k49", "2000-unknown-keys")  # the 50th named, the rest counted
    # no body at all, and a body API Gateway could only pass as base64 of something that is not JSON
    for route in (post, patch, kdocs):
        yield case(route, body_event(route, None), MALFORMED, None, "no-body")
    yield case(post, body_event(post, Encoded(base64.b64encode(b"{}"))), MALFORMED, None, "double-base64")


@pytest.mark.parametrize(CASE_ARGS, list(hostile_cases()))
def test_what_else_a_hostile_caller_tries(api, route, event, expected, field):
    run(api, route, event, expected, field)
