"""KDocs answers to the error table, for both the "HTTP 200 + code" and "HTTP 4xx/5xx + JSON" styles (no I/O)."""

from __future__ import annotations

import json

import pytest

from sharelink.errors import (
    ProviderError,
    ProviderForbidden,
    ProviderNotFound,
    ProviderRateLimited,
    ProviderRejected,
    ProviderTimeout,
    TokenRejected,
)
from sharelink.providers.kdocs import CreateLinkRequest, link_body, normalize, unwrap
from sharelink.transport import Reply


def failure(code: int, status: int = 200, key: str = "msg") -> Reply:
    return Reply(status, json.dumps({"code": code, key: "why", "data": None}).encode())


@pytest.mark.parametrize("status", [200, 400])
@pytest.mark.parametrize(
    ("code", "error"),
    [
        (10001, ProviderRejected),
        (10002, ProviderTimeout),
        (10003, ProviderForbidden),
        (30002, ProviderRateLimited),
        (30004, ProviderError),
        (30012, ProviderNotFound),
        (30014, ProviderNotFound),
        (40008, ProviderError),
        (99999, ProviderError),
    ],
)
def test_codes_map_to_typed_errors_in_either_style(code, error, status):
    with pytest.raises(error) as raised:
        unwrap(failure(code, status))

    assert (raised.value.provider, raised.value.provider_code) == ("kdocs", code)


@pytest.mark.parametrize("key", ["msg", "message", "result"])
def test_the_providers_message_is_kept_whatever_its_key(key):
    with pytest.raises(ProviderRejected) as raised:
        unwrap(failure(10001, key=key))

    assert raised.value.message.endswith("why")


@pytest.mark.parametrize("reply", [failure(30001), failure(30001, 401), Reply(401, b"")])
def test_token_errors_ask_for_a_fresh_read(reply):
    with pytest.raises(TokenRejected):
        unwrap(reply)


@pytest.mark.parametrize(
    "reply",
    [Reply(502, b"<html>bad gateway</html>"), Reply(200, b'{"code": 0'), Reply(200, b'{"code": 0, "data": null}')],
)
def test_answers_without_the_envelope_are_provider_errors(reply):
    with pytest.raises(ProviderError):
        unwrap(reply)


def test_http_429_without_json_is_rate_limited():
    with pytest.raises(ProviderRateLimited):
        unwrap(Reply(429, b"slow down", {"Retry-After": "30"}))


def test_docs_body_round_trips_to_the_same_provider_body():
    docs_body = {"range": "anyone", "permission": "read", "period": 7, "reset": False, "ext_perm_list": ["comment"]}

    assert link_body(CreateLinkRequest.model_validate(docs_body | {"file_token": "777"})) == docs_body


@pytest.mark.parametrize(("expire_time", "expires_at"), [(1658904074, "2022-07-27T06:41:14Z"), (0, None), (None, None)])
def test_expire_time_epoch_becomes_rfc3339_or_null(expire_time, expires_at):
    data = {"sid": "cgvAMCMGhZaa", "link_url": "https://kdocs.cn/l/cgvAMCMGhZaa", "expire_time": expire_time}

    assert normalize(data, "777").model_dump(mode="json")["expires_at"] == expires_at
