"""123pan's envelope and codes to the error table, one row at a time (no I/O)."""

from __future__ import annotations

import json

import pytest

from sharelink.errors import (
    ProviderError,
    ProviderNotFound,
    ProviderRateLimited,
    ProviderRejected,
    TokenRejected,
)
from sharelink.providers.pan123 import CreateShareRequest, create_body, parse_expiration, unwrap
from sharelink.transport import Reply


def envelope(code: int, message: str = "", data: object = None, status: int = 200, **headers: str) -> Reply:
    body = {"code": code, "message": message, "data": data, "x-traceID": "t-1"}
    return Reply(status, json.dumps(body).encode(), headers)


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (envelope(5066, "文件不存在"), ProviderNotFound),
        (envelope(1, "分享名称非法"), ProviderRejected),
        (envelope(5113, "流量包已用完"), ProviderRejected),
        (envelope(429, "请求太频繁"), ProviderRateLimited),
        (envelope(429, status=429, **{"Retry-After": "9"}), ProviderRateLimited),
        (envelope(4242, "?"), ProviderError),
        (envelope(0, status=503), ProviderError),
        (Reply(200, b"<html>oops</html>"), ProviderError),
        (Reply(200, b'{"code": true}'), ProviderError),
    ],
)
def test_codes_map_to_typed_errors(reply, error):
    with pytest.raises(error) as raised:
        unwrap(reply)

    assert raised.value.provider == "123pan"


@pytest.mark.parametrize("reply", [envelope(401, "token is expired"), Reply(401, b"")])
def test_token_errors_ask_for_a_fresh_read(reply):
    with pytest.raises(TokenRejected):
        unwrap(reply)


def test_retry_after_comes_from_the_header():
    with pytest.raises(ProviderRateLimited) as raised:
        unwrap(envelope(429, status=429, **{"Retry-After": "9"}))

    assert raised.value.retry_after == 9


def test_success_is_the_envelope():
    assert unwrap(envelope(0, "ok", {"shareID": 1}))["data"] == {"shareID": 1}


def test_docs_body_round_trips_to_the_same_provider_body():
    docs_body = {"shareName": "测试分享链接", "shareExpire": 1, "fileIDList": "14713526,10861131"}

    assert create_body(CreateShareRequest.model_validate(docs_body)) == docs_body


def test_expiration_is_read_as_utc_plus_8():
    assert parse_expiration("2025-02-25 10:12:45").isoformat() == "2025-02-25T02:12:45+00:00"
    assert parse_expiration("") is None
