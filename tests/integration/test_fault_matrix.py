"""Every way a provider can fail, per provider, against README's error table ("### Errors").

The handlers run as Lambda runs them, against moto and the simulators over HTTP. Each row plants one fault in the
simulator (or points the handler's transport at a closed port) and checks the answer: the table's status and
code, the provider's code where it gave one, the one error shape, and never a stack trace.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import pytest

from sharelink.transport import HttpTransport
from tests.conftest import PROVIDER_TIMEOUT_S, invoke, load_event

PAN123_CREATE = "/api/v1/share/create"
KDOCS_LINKS = "/api/v1/openapi/personal/files/777/links"  # events/kdocs_create.json is for file 777
ERROR_KEYS = {"code", "message", "details", "provider", "provider_code"}
REFUSED = "connection refused"  # not a simulator fault: the transport points at a port nobody listens on

# fault -> (status, code, provider_code). A fault is a simulator fault kind with its options.
PAN123_TABLE: dict[str, tuple[dict[str, Any], tuple[int, str, int | None]]] = {
    "timeout": ({"kind": "timeout", "delay": 3}, (504, "provider_timeout", None)),
    "connection-refused": ({"kind": REFUSED}, (502, "provider_error", None)),
    "http500": ({"kind": "http500"}, (502, "provider_error", None)),
    "html-200": ({"kind": "non_json"}, (502, "provider_error", None)),
    "truncated-json": ({"kind": "truncated_json"}, (502, "provider_error", None)),
    "code-1": ({"kind": "code", "code": 1, "message": "分享名称包含特殊字符"}, (422, "provider_rejected", 1)),
    # The handler re-reads the secret and retries once: the token is refused both times.
    "code-401": ({"kind": "code", "code": 401, "message": "expired", "times": 2}, (502, "provider_auth_failed", 401)),
    "code-429": ({"kind": "code", "code": 429, "message": "请求太频繁"}, (429, "provider_rate_limited", 429)),
    "code-5066": ({"kind": "code", "code": 5066, "message": "文件不存在"}, (404, "provider_not_found", 5066)),
    "code-5113": ({"kind": "code", "code": 5113, "message": "流量包已用完"}, (422, "provider_rejected", 5113)),
    "code-unknown": ({"kind": "code", "code": 77777, "message": "新错误"}, (502, "provider_error", 77777)),
}  # fmt: skip

KDOCS_TRANSPORT_TABLE: dict[str, tuple[dict[str, Any], tuple[int, str, int | None]]] = {
    "timeout": ({"kind": "timeout", "delay": 3}, (504, "provider_timeout", None)),
    "connection-refused": ({"kind": REFUSED}, (502, "provider_error", None)),
    "http500": ({"kind": "http500"}, (502, "provider_error", None)),
    "html-200": ({"kind": "non_json"}, (502, "provider_error", None)),
    "truncated-json": ({"kind": "truncated_json"}, (502, "provider_error", None)),
}
# KDocs answers these as HTTP 200 + code, or as HTTP 4xx/5xx with the same JSON: each row runs both ways.
KDOCS_CODE_TABLE: dict[str, tuple[dict[str, Any], tuple[int, str, int | None]]] = {
    "code-10001": ({"kind": "code", "code": 10001, "msg": "invalid argument"}, (422, "provider_rejected", 10001)),
    "code-10002": ({"kind": "code", "code": 10002, "msg": "timeout"}, (504, "provider_timeout", 10002)),
    "code-10003": ({"kind": "code", "code": 10003, "msg": "permission denied"}, (403, "provider_forbidden", 10003)),
    # Not in README's table: an unlisted code, so a provider error.
    "code-20002": ({"kind": "code", "code": 20002, "msg": "app not exist"}, (502, "provider_error", 20002)),
    "code-30001": ({"kind": "code", "code": 30001, "msg": "no auth", "times": 2}, (502, "provider_auth_failed", 30001)),
    "code-30002": ({"kind": "code", "code": 30002, "msg": "rate limiter"}, (429, "provider_rate_limited", 30002)),
    "code-30004": ({"kind": "code", "code": 30004, "msg": "internal error"}, (502, "provider_error", 30004)),
    "code-30012": ({"kind": "code", "code": 30012, "msg": "file not exists"}, (404, "provider_not_found", 30012)),
    "code-30014": ({"kind": "code", "code": 30014, "msg": "link not exists"}, (404, "provider_not_found", 30014)),
    "code-40008": ({"kind": "code", "code": 40008, "msg": "service upgrading"}, (502, "provider_error", 40008)),
}  # fmt: skip


def closed_port() -> int:
    """A loopback port that was free a moment ago and has nobody listening on it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def transport_to_closed_port(client: Any, provider: str) -> Iterator[None]:
    """The handler's provider client talks to a closed port for the duration; its transport comes back after."""
    original = client.transport
    client.transport = HttpTransport(
        f"http://127.0.0.1:{closed_port()}", provider=provider, timeout_s=float(PROVIDER_TIMEOUT_S)
    )
    try:
        yield
    finally:
        client.transport = original


def plant(sim: Any, fault: dict[str, Any], path: str | None) -> None:
    options = {key: value for key, value in fault.items() if key != "kind"}
    sim.faults.add(fault["kind"], path=path, **options)


def call(module: ModuleType, client: Any, provider: str, sim: Any, fault: dict, event: dict, path: str | None):
    if fault["kind"] == REFUSED:
        with transport_to_closed_port(client, provider):
            return invoke(module, event)
    plant(sim, fault, path)
    return invoke(module, event)


def provider_calls(fault: dict[str, Any]) -> int:
    """How many calls the fault lets reach the provider: none when refused, two when the token is refused (the
    second after re-reading the secret), else one: a create is never resent."""
    if fault["kind"] == REFUSED:
        return 0
    return fault.get("times", 1)


def nothing_created(fault: dict[str, Any]) -> bool:
    """A timed-out call is answered by the simulator after the test (with a token the next test's reset revokes)."""
    return fault["kind"] != "timeout"


def assert_answer(answer: Any, headers: dict[str, str], got_status: int, expected: tuple, provider: str) -> None:
    status, code, provider_code = expected
    assert (got_status, answer["error"]["code"], answer["error"]["provider_code"]) == (status, code, provider_code)
    assert set(answer) == {"error", "request_id"}
    assert set(answer["error"]) == ERROR_KEYS
    assert answer["error"]["provider"] == provider
    assert answer["error"]["details"] == []
    assert isinstance(answer["error"]["message"], str) and answer["error"]["message"]
    assert isinstance(answer["request_id"], str) and answer["request_id"]
    assert "Traceback" not in json.dumps(answer, ensure_ascii=False)
    assert headers["Content-Type"] == "application/json"
    if status == 429:
        assert int(headers["Retry-After"]) >= 1


@pytest.mark.parametrize(("fault", "expected"), PAN123_TABLE.values(), ids=PAN123_TABLE.keys())
def test_pan123_failure_answers_its_error_table_row(pan123_api, pan123_sim, fault, expected):
    event = load_event("pan123_create.json")

    got_status, headers, answer = call(pan123_api, pan123_api.pan123, "123pan", pan123_sim, fault, event, PAN123_CREATE)

    assert_answer(answer, headers, got_status, expected, "123pan")
    assert [call.path for call in pan123_sim.requests] == [PAN123_CREATE] * provider_calls(fault)
    if nothing_created(fault):
        assert pan123_sim.shares == {}
    assert not pan123_sim.faults.take(PAN123_CREATE), "a planned fault was left unused"


@pytest.mark.parametrize(("fault", "expected"), KDOCS_TRANSPORT_TABLE.values(), ids=KDOCS_TRANSPORT_TABLE.keys())
def test_kdocs_transport_failure_answers_its_error_table_row(kdocs_api, kdocs_sim, fault, expected):
    event = load_event("kdocs_create.json")

    got_status, headers, answer = call(kdocs_api, kdocs_api.kdocs, "kdocs", kdocs_sim, fault, event, None)

    assert_answer(answer, headers, got_status, expected, "kdocs")
    assert [call.path for call in kdocs_sim.requests] == [KDOCS_LINKS] * provider_calls(fault)
    if nothing_created(fault):
        assert kdocs_sim.links == {}


@pytest.mark.parametrize("errors_as_http_status", [False, True], ids=["http-200-code", "http-4xx-5xx-json"])
@pytest.mark.parametrize(("fault", "expected"), KDOCS_CODE_TABLE.values(), ids=KDOCS_CODE_TABLE.keys())
def test_kdocs_code_answers_its_error_table_row(kdocs_api, kdocs_sim, fault, expected, errors_as_http_status):
    kdocs_sim.errors_as_http_status = errors_as_http_status
    event = load_event("kdocs_create.json")

    got_status, headers, answer = call(kdocs_api, kdocs_api.kdocs, "kdocs", kdocs_sim, fault, event, None)

    assert_answer(answer, headers, got_status, expected, "kdocs")
    assert [call.path for call in kdocs_sim.requests] == [KDOCS_LINKS] * provider_calls(fault)
    if nothing_created(fault):
        assert kdocs_sim.links == {}
    assert not kdocs_sim.faults.take(KDOCS_LINKS), "a planned fault was left unused"
