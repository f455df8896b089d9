"""The 123pan simulator, exercised over real HTTP on 127.0.0.1."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests

from local.simulators.base import Faults, SimClock
from local.simulators.pan123 import Pan123Simulator

TOKEN_PATH = "/api/v1/access_token"
CREATE_PATH = "/api/v1/share/create"
LIST_PATH = "/api/v1/share/list"
INFO_PATH = "/api/v1/share/list/info"
VALID_SHARE = {"shareName": "测试分享链接", "shareExpire": 1, "fileIDList": "14713526,10861131"}


@pytest.fixture
def sim() -> Iterator[Pan123Simulator]:
    with Pan123Simulator() as simulator:
        yield simulator


def call(
    sim: Pan123Simulator,
    method: str,
    path: str,
    *,
    token: str | None = None,
    platform: str | None = "open_platform",
    timeout: float = 5,
    **kwargs: Any,
) -> requests.Response:
    headers = {}
    if platform is not None:
        headers["Platform"] = platform
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(method, sim.url + path, headers=headers, timeout=timeout, **kwargs)


def envelope(response: requests.Response) -> dict[str, Any]:
    assert response.status_code == 200
    document = response.json()
    assert set(document) == {"code", "message", "data", "x-traceID"}
    assert document["x-traceID"].endswith("_kong-sim")
    if document["code"] != 0:
        assert document["data"] is None
    return document


def ask_token(sim: Pan123Simulator, client_id: str = "sim-client", secret: str = "sim-secret") -> dict[str, Any]:
    return envelope(call(sim, "POST", TOKEN_PATH, json={"clientID": client_id, "clientSecret": secret}))


def create(sim: Pan123Simulator, token: str, **fields: Any) -> dict[str, Any]:
    return envelope(call(sim, "POST", CREATE_PATH, token=token, json={**VALID_SHARE, **fields}))


def list_shares(sim: Pan123Simulator, token: str, **params: Any) -> dict[str, Any]:
    return envelope(call(sim, "GET", LIST_PATH, token=token, params=params))


def update(sim: Pan123Simulator, token: str, body: Any) -> dict[str, Any]:
    return envelope(call(sim, "PUT", INFO_PATH, token=token, json=body))


# --- access token


def test_token_is_opaque_and_expires_30_days_later_in_utc8(sim: Pan123Simulator) -> None:
    sim.clock.freeze()
    answer = ask_token(sim)
    assert (answer["code"], answer["message"]) == (0, "ok")
    assert len(answer["data"]["accessToken"]) >= 40
    expired_at = answer["data"]["expiredAt"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00", expired_at)
    assert datetime.fromisoformat(expired_at) == (sim.clock.now() + timedelta(days=30)).replace(microsecond=0)
    assert sim.live_tokens() == [answer["data"]["accessToken"]]


@pytest.mark.parametrize(
    "body", [{"clientID": "sim-client", "clientSecret": "wrong"}, {"clientID": "nobody"}, {"clientID": "sim-client"}]
)
def test_token_refuses_wrong_credentials(sim: Pan123Simulator, body: dict[str, str]) -> None:
    answer = envelope(call(sim, "POST", TOKEN_PATH, json=body))
    assert answer["code"] == 401
    assert sim.live_tokens() == []


def test_a_fourth_token_knocks_out_the_oldest(sim: Pan123Simulator) -> None:
    tokens = [ask_token(sim)["data"]["accessToken"] for _ in range(4)]
    assert sim.live_tokens() == tokens[1:]
    refusal = list_shares(sim, tokens[0], limit=10)
    assert (refusal["code"], refusal["message"]) == (401, "token is invalid")
    assert all(list_shares(sim, token, limit=10)["code"] == 0 for token in tokens[1:])


def test_token_lives_30_days_on_the_sim_clock(sim: Pan123Simulator) -> None:
    sim.clock.freeze()
    token = sim.issue_token()
    sim.clock.advance(30 * 86400 - 1)
    assert list_shares(sim, token, limit=1)["code"] == 0
    sim.clock.advance(1)
    refusal = list_shares(sim, token, limit=1)
    assert (refusal["code"], refusal["message"]) == (401, "token is expired")
    assert sim.live_tokens() == []


def test_expired_tokens_do_not_count_towards_the_cap(sim: Pan123Simulator) -> None:
    old = [sim.issue_token() for _ in range(3)]
    sim.expire_tokens()
    fresh = sim.issue_token()
    assert sim.live_tokens() == [fresh]
    assert list_shares(sim, old[0], limit=1)["message"] == "token is expired"


def test_token_call_is_rate_limited_per_client() -> None:
    clients = {"a": "secret-a", "b": "secret-b"}
    with Pan123Simulator(clients=clients, token_qps=2) as sim:
        sim.clock.freeze()
        assert [ask_token(sim, "a", "secret-a")["code"] for _ in range(3)] == [0, 0, 429]
        assert ask_token(sim, "a", "secret-a")["message"] == "请求太频繁"
        assert ask_token(sim, "b", "secret-b")["code"] == 0
        sim.clock.advance(1)
        assert ask_token(sim, "a", "secret-a")["code"] == 0


def test_issue_token_helper_is_not_recorded_and_knows_clients(sim: Pan123Simulator) -> None:
    sim.issue_token()
    assert sim.requests == []
    with pytest.raises(ValueError, match="unknown client"):
        sim.issue_token("nobody")


# --- headers


@pytest.mark.parametrize("platform", [None, "web", ""])
def test_every_call_needs_the_platform_header(sim: Pan123Simulator, platform: str | None) -> None:
    token = sim.issue_token()
    token_answer = envelope(
        call(sim, "POST", TOKEN_PATH, platform=platform, json={"clientID": "sim-client", "clientSecret": "sim-secret"})
    )
    create_answer = envelope(call(sim, "POST", CREATE_PATH, platform=platform, token=token, json=VALID_SHARE))
    assert token_answer["code"] == create_answer["code"] == 1
    assert "platform" in create_answer["message"]


@pytest.mark.parametrize("authorization", [None, "Bearer ", "Bearer not-a-token", "Basic {token}", "{token}"])
def test_calls_need_a_bearer_token(sim: Pan123Simulator, authorization: str | None) -> None:
    token = sim.issue_token()
    headers = {"Platform": "open_platform"}
    if authorization is not None:
        headers["Authorization"] = authorization.format(token=token)
    answer = envelope(requests.post(sim.url + CREATE_PATH, headers=headers, json=VALID_SHARE, timeout=5))
    assert (answer["code"], answer["message"]) == (401, "token is invalid")
    assert sim.shares == {}


# --- share/create


def test_create_answers_incrementing_ids_and_stores_the_share(sim: Pan123Simulator) -> None:
    sim.clock.freeze()
    token = sim.issue_token()
    first = create(sim, token, sharePwd="ab12", trafficSwitch=4, trafficLimitSwitch=2, trafficLimit=1024)
    second = create(sim, token, shareExpire=0)
    assert (first["code"], first["message"]) == (0, "ok")
    assert [first["data"]["shareID"], second["data"]["shareID"]] == [87187530, 87187531]
    assert re.fullmatch(r"[A-Za-z0-9-]{12}", first["data"]["shareKey"])
    stored = sim.shares[87187530]
    assert stored["shareKey"] == first["data"]["shareKey"]
    assert stored["expiration"] == sim.clock.now().replace(microsecond=0) + timedelta(days=1)
    assert stored["fileIds"] == [14713526, 10861131]
    assert (stored["sharePwd"], stored["trafficSwitch"], stored["trafficLimitSwitch"], stored["trafficLimit"]) == (
        "ab12",
        4,
        2,
        1024,
    )
    assert (stored["previewCount"], stored["downloadCount"], stored["saveCount"]) == (0, 0, 0)
    assert sim.shares[87187531]["sharePwd"] == ""


@pytest.mark.parametrize("expire_days", [0, 1, 7, 30])
def test_create_accepts_each_documented_expiry(sim: Pan123Simulator, expire_days: int) -> None:
    assert create(sim, sim.issue_token(), shareExpire=expire_days)["code"] == 0


def test_create_accepts_100_file_ids_and_null_optionals(sim: Pan123Simulator) -> None:
    ids = ",".join(str(file_id) for file_id in range(1, 101))
    assert create(sim, sim.issue_token(), fileIDList=ids, sharePwd=None, trafficLimit=None)["code"] == 0


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"shareName": None}, "shareName"),
        ({"shareName": ""}, "shareName"),
        ({"shareName": "   "}, "shareName"),
        ({"shareName": 5}, "shareName"),
        ({"shareExpire": None}, "shareExpire"),
        ({"shareExpire": 2}, "shareExpire"),
        ({"shareExpire": "7"}, "shareExpire"),
        ({"shareExpire": True}, "shareExpire"),
        ({"shareExpire": 7.0}, "shareExpire"),
        ({"fileIDList": None}, "fileIDList"),
        ({"fileIDList": ""}, "fileIDList"),
        ({"fileIDList": 14713526}, "fileIDList"),
        ({"fileIDList": "1,,2"}, "fileIDList"),
        ({"fileIDList": "0"}, "fileIDList"),
        ({"fileIDList": "-1"}, "fileIDList"),
        ({"fileIDList": "1, 2"}, "fileIDList"),
        ({"fileIDList": "a"}, "fileIDList"),
        ({"fileIDList": ",".join(str(n) for n in range(1, 102))}, "fileIDList"),
        ({"sharePwd": 1234}, "sharePwd"),
        ({"trafficSwitch": 0}, "trafficSwitch"),
        ({"trafficSwitch": 5}, "trafficSwitch"),
        ({"trafficSwitch": True}, "trafficSwitch"),
        ({"trafficSwitch": "2"}, "trafficSwitch"),
        ({"trafficLimitSwitch": 3}, "trafficLimitSwitch"),
        ({"trafficLimit": -1}, "trafficLimit"),
        ({"trafficLimit": 1.5}, "trafficLimit"),
    ],
)
def test_create_refuses_invalid_fields(sim: Pan123Simulator, fields: dict[str, Any], named: str) -> None:
    body = {name: value for name, value in {**VALID_SHARE, **fields}.items() if value is not None}
    answer = envelope(call(sim, "POST", CREATE_PATH, token=sim.issue_token(), json=body))
    assert answer["code"] == 1
    assert named in answer["message"]
    assert sim.shares == {}


@pytest.mark.parametrize("body", [[VALID_SHARE], "shareName=x"])
def test_create_refuses_a_body_that_is_not_an_object(sim: Pan123Simulator, body: Any) -> None:
    payload = {"json": body} if isinstance(body, list) else {"data": body}
    answer = envelope(call(sim, "POST", CREATE_PATH, token=sim.issue_token(), **payload))
    assert (answer["code"], answer["message"]) == (1, "request body must be a JSON object")


def test_create_answers_5066_for_an_unknown_file(sim: Pan123Simulator) -> None:
    answer = create(sim, sim.issue_token(), fileIDList="14713526,999999")
    assert (answer["code"], answer["message"]) == (5066, "文件不存在")
    assert sim.shares == {}


def test_files_are_configurable() -> None:
    with Pan123Simulator(files=[42]) as sim:
        token = sim.issue_token()
        assert create(sim, token, fileIDList="42")["code"] == 0
        assert create(sim, token, fileIDList="1")["code"] == 5066


def test_create_is_unlimited_unless_configured(sim: Pan123Simulator) -> None:
    sim.clock.freeze()
    token = sim.issue_token()
    assert all(create(sim, token)["code"] == 0 for _ in range(30))
    with Pan123Simulator(create_qps=2) as limited:
        limited.clock.freeze()
        token = limited.issue_token()
        assert [create(limited, token)["code"] for _ in range(3)] == [0, 0, 429]


# --- share/list


def test_list_pages_in_id_order_and_ends_with_minus_one(sim: Pan123Simulator) -> None:
    token = sim.issue_token()
    ids = [create(sim, token)["data"]["shareID"] for _ in range(5)]
    first = list_shares(sim, token, limit=2, lastShareId=0)["data"]
    second = list_shares(sim, token, limit=2, lastShareId=first["lastShareId"])["data"]
    last = list_shares(sim, token, limit=2, lastShareId=second["lastShareId"])["data"]
    assert [[item["shareId"] for item in page["shareList"]] for page in (first, second, last)] == [
        ids[:2],
        ids[2:4],
        ids[4:],
    ]
    assert (first["lastShareId"], second["lastShareId"], last["lastShareId"]) == (ids[1], ids[3], -1)
    assert list_shares(sim, token, limit=5)["data"]["lastShareId"] == -1
    assert list_shares(sim, token, limit=100, lastShareId=ids[-1])["data"] == {"lastShareId": -1, "shareList": []}


def test_list_items_carry_the_documented_fields(sim: Pan123Simulator) -> None:
    sim.clock.freeze()
    token = sim.issue_token()
    create(sim, token, shareExpire=1)
    create(sim, token, shareExpire=0, sharePwd="pw", trafficSwitch=2)
    day_share, permanent = list_shares(sim, token, limit=10)["data"]["shareList"]
    assert set(day_share) == {
        "shareId", "shareKey", "shareName", "expiration", "expired", "sharePwd", "trafficSwitch",
        "trafficLimitSwitch", "trafficLimit", "bytesCharge", "previewCount", "downloadCount", "saveCount",
    }  # fmt: skip
    beijing_tomorrow = sim.clock.now() + timedelta(days=1, hours=8)
    assert day_share["expiration"] == beijing_tomorrow.strftime("%Y-%m-%d %H:%M:%S")
    assert (day_share["expired"], day_share["sharePwd"], day_share["trafficSwitch"]) == (0, "", 1)
    assert (permanent["expiration"], permanent["sharePwd"], permanent["trafficSwitch"]) == (
        "2099-12-31 23:59:59",
        "pw",
        2,
    )
    sim.clock.advance(86400)
    assert [item["expired"] for item in list_shares(sim, token, limit=10)["data"]["shareList"]] == [1, 0]


def test_list_shows_only_the_callers_shares() -> None:
    with Pan123Simulator(clients={"a": "secret-a", "b": "secret-b"}) as sim:
        mine, theirs = sim.issue_token("a"), sim.issue_token("b")
        create(sim, mine)
        assert list_shares(sim, theirs, limit=10)["data"] == {"lastShareId": -1, "shareList": []}


@pytest.mark.parametrize(
    "params",
    [{}, {"limit": 0}, {"limit": 101}, {"limit": "ten"}, {"limit": ""}, {"limit": 10, "lastShareId": -1}],
)
def test_list_refuses_bad_paging(sim: Pan123Simulator, params: dict[str, Any]) -> None:
    answer = list_shares(sim, sim.issue_token(), **params)
    assert answer["code"] == 1


def test_list_is_rate_limited_per_sim_second(sim: Pan123Simulator) -> None:
    sim.clock.freeze()
    token = sim.issue_token()
    answers = [list_shares(sim, token, limit=1) for _ in range(11)]
    assert [answer["code"] for answer in answers] == [0] * 10 + [429]
    assert answers[-1]["message"] == "请求太频繁"
    share_id = create(sim, token)["data"]["shareID"]
    assert update(sim, token, {"shareIdList": [share_id], "trafficSwitch": 2})["code"] == 0  # its own bucket
    sim.clock.advance(1)
    assert list_shares(sim, token, limit=1)["code"] == 0


def test_list_info_is_rate_limited_too() -> None:
    with Pan123Simulator(list_qps=2) as sim:
        sim.clock.freeze()
        token = sim.issue_token()
        share_id = create(sim, token)["data"]["shareID"]
        body = {"shareIdList": [share_id], "trafficLimit": 1}
        assert [update(sim, token, body)["code"] for _ in range(3)] == [0, 0, 429]


# --- share/list/info


def test_list_info_updates_traffic_settings(sim: Pan123Simulator) -> None:
    token = sim.issue_token()
    ids = [create(sim, token)["data"]["shareID"] for _ in range(2)]
    answer = update(sim, token, {"shareIdList": ids, "trafficSwitch": 3, "trafficLimitSwitch": 2, "trafficLimit": 9})
    assert (answer["code"], answer["message"], answer["data"]) == (0, "ok", None)
    items = list_shares(sim, token, limit=10)["data"]["shareList"]
    assert [(item["trafficSwitch"], item["trafficLimitSwitch"], item["trafficLimit"]) for item in items] == [
        (3, 2, 9)
    ] * 2


def test_list_info_refuses_unknown_or_foreign_shares_atomically() -> None:
    with Pan123Simulator(clients={"a": "secret-a", "b": "secret-b"}) as sim:
        mine, theirs = sim.issue_token("a"), sim.issue_token("b")
        own_id = create(sim, mine)["data"]["shareID"]
        foreign_id = create(sim, theirs)["data"]["shareID"]
        for share_ids in ([own_id, 1], [own_id, foreign_id]):
            answer = update(sim, mine, {"shareIdList": share_ids, "trafficSwitch": 4})
            assert (answer["code"], answer["message"]) == (1, f"share not found: {share_ids[1]}")
        assert sim.shares[own_id]["trafficSwitch"] == 1


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({}, "shareIdList"),
        ({"shareIdList": []}, "shareIdList"),
        ({"shareIdList": "87187530"}, "shareIdList"),
        ({"shareIdList": [True]}, "shareIdList"),
        ({"shareIdList": list(range(1, 102))}, "shareIdList"),
        ({"shareIdList": [87187530], "trafficSwitch": 9}, "trafficSwitch"),
        ({"shareIdList": [87187530], "trafficLimitSwitch": 0}, "trafficLimitSwitch"),
        ({"shareIdList": [87187530], "trafficLimit": "1"}, "trafficLimit"),
    ],
)
def test_list_info_validates_its_body(sim: Pan123Simulator, body: dict[str, Any], named: str) -> None:
    token = sim.issue_token()
    create(sim, token)
    answer = update(sim, token, body)
    assert answer["code"] == 1
    assert named in answer["message"]


# --- routing


@pytest.mark.parametrize(("method", "path"), [("GET", "/api/v1/nothing"), ("GET", CREATE_PATH), ("POST", LIST_PATH)])
def test_unknown_routes_answer_http_404(sim: Pan123Simulator, method: str, path: str) -> None:
    response = call(sim, method, path, token=sim.issue_token())
    assert response.status_code == 404
    assert response.json() == {"code": 404, "message": "not found"}


# --- faults


def test_http500_fault(sim: Pan123Simulator) -> None:
    sim.faults.add("http500")
    response = call(sim, "POST", CREATE_PATH, token=sim.issue_token(), json=VALID_SHARE)
    assert (response.status_code, response.json()) == (500, {"error": "internal"})
    assert sim.shares == {}


def test_non_json_fault(sim: Pan123Simulator) -> None:
    sim.faults.add("non_json")
    response = call(sim, "GET", LIST_PATH, token=sim.issue_token(), params={"limit": 1})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html"
    assert response.text == "<html>502 Bad Gateway</html>"


def test_truncated_json_fault(sim: Pan123Simulator) -> None:
    sim.faults.add("truncated_json")
    response = call(sim, "GET", LIST_PATH, token=sim.issue_token(), params={"limit": 1})
    assert (response.status_code, response.headers["Content-Type"]) == (200, "application/json")
    assert response.text == '{"code": 0, "mess'
    with pytest.raises(requests.JSONDecodeError):
        response.json()


def test_http429_fault(sim: Pan123Simulator) -> None:
    sim.faults.add("http429")
    response = call(sim, "POST", TOKEN_PATH, json={"clientID": "sim-client", "clientSecret": "sim-secret"})
    assert (response.status_code, response.headers["Retry-After"]) == (429, "7")
    assert (response.json()["code"], response.json()["data"]) == (429, None)


def test_close_fault_drops_the_connection(sim: Pan123Simulator) -> None:
    sim.faults.add("close")
    with pytest.raises(requests.ConnectionError):
        call(sim, "GET", LIST_PATH, token=sim.issue_token(), params={"limit": 1})
    assert len(sim.requests) == 1


def test_timeout_fault_delays_without_blocking_others(sim: Pan123Simulator) -> None:
    token = sim.issue_token()
    sim.faults.add("timeout", path=CREATE_PATH, delay=0.3)
    with pytest.raises(requests.Timeout):
        call(sim, "POST", CREATE_PATH, token=token, json=VALID_SHARE, timeout=0.1)
    assert list_shares(sim, token, limit=1)["code"] == 0
    assert create(sim, token)["code"] == 0


def test_expire_token_fault(sim: Pan123Simulator) -> None:
    token = sim.issue_token()
    sim.faults.add("expire_token")
    answer = list_shares(sim, token, limit=1)
    assert (answer["code"], answer["message"]) == (401, "token is expired")
    assert list_shares(sim, token, limit=1)["code"] == 401
    assert list_shares(sim, ask_token(sim)["data"]["accessToken"], limit=1)["code"] == 0


@pytest.mark.parametrize(("code", "message"), [(1, "内部错误"), (5113, "流量不足"), (429, "请求太频繁")])
def test_code_fault(sim: Pan123Simulator, code: int, message: str) -> None:
    sim.faults.add("code", code=code, message=message)
    answer = create(sim, sim.issue_token())
    assert (answer["code"], answer["message"], answer["data"]) == (code, message, None)
    assert sim.shares == {}


def test_faults_follow_path_and_times(sim: Pan123Simulator) -> None:
    token = sim.issue_token()
    sim.faults.add("code", path=CREATE_PATH, times=2, code=5113, message="quota")
    assert list_shares(sim, token, limit=1)["code"] == 0
    assert [create(sim, token)["code"] for _ in range(3)] == [5113, 5113, 0]


def test_faults_take_in_order_and_refuse_unknown_kinds() -> None:
    faults = Faults()
    faults.add("http500", path="/a")
    faults.add("close")
    taken = [faults.take("/b"), faults.take("/b"), faults.take("/a")]
    assert [fault and fault.kind for fault in taken] == ["close", None, "http500"]
    with pytest.raises(ValueError, match="unknown fault kind"):
        faults.add("expire_token")
    with pytest.raises(ValueError, match="times"):
        faults.add("close", times=0)


# --- control endpoints and recording


def test_faults_can_be_planned_over_http(sim: Pan123Simulator) -> None:
    planned = requests.post(
        sim.url + "/__sim/faults", json={"kind": "code", "path": CREATE_PATH, "code": 5113}, timeout=5
    )
    assert planned.status_code == 204
    assert create(sim, sim.issue_token())["code"] == 5113
    refused = requests.post(sim.url + "/__sim/faults", json={"kind": "meteor"}, timeout=5)
    assert refused.status_code == 400


def test_clock_can_be_advanced_over_http(sim: Pan123Simulator) -> None:
    sim.clock.freeze()
    before = sim.clock.now()
    response = requests.post(sim.url + "/__sim/clock", json={"advance": 86400}, timeout=5)
    assert response.status_code == 200
    assert datetime.fromisoformat(response.json()["now"]) == before + timedelta(days=1) == sim.clock.now()
    assert requests.post(sim.url + "/__sim/clock", json={"advance": "soon"}, timeout=5).status_code == 400


def test_reset_over_http_clears_everything(sim: Pan123Simulator) -> None:
    token = sim.issue_token()
    create(sim, token)
    sim.faults.add("http500")
    assert requests.post(sim.url + "/__sim/reset", timeout=5).status_code == 204
    assert (sim.requests, sim.shares, sim.live_tokens()) == ([], {}, [])
    assert list_shares(sim, token, limit=1)["code"] == 401
    assert create(sim, sim.issue_token())["data"]["shareID"] == 87187530


def test_requests_are_recorded_as_received(sim: Pan123Simulator) -> None:
    token = sim.issue_token()
    create(sim, token)
    list_shares(sim, token, limit=5, lastShareId=0)
    call(sim, "POST", CREATE_PATH, token=token, data="not json")
    recorded = requests.get(sim.url + "/__sim/requests", timeout=5).json()
    assert [(entry["method"], entry["path"]) for entry in recorded] == [
        ("POST", CREATE_PATH),
        ("GET", LIST_PATH),
        ("POST", CREATE_PATH),
    ]
    assert set(recorded[0]) == {"method", "path", "query", "headers", "body"}
    assert recorded[0]["body"] == VALID_SHARE
    assert recorded[0]["headers"]["Platform"] == "open_platform"
    assert recorded[0]["headers"]["Authorization"] == f"Bearer {token}"
    assert (recorded[1]["query"], recorded[1]["body"]) == ({"limit": "5", "lastShareId": "0"}, None)
    assert recorded[2]["body"] == "not json"
    assert len(sim.requests) == 3  # the control calls are not recorded


def test_unknown_control_endpoint(sim: Pan123Simulator) -> None:
    assert requests.get(sim.url + "/__sim/nothing", timeout=5).status_code == 404


# --- clock and lifecycle


def test_frozen_clock_moves_only_when_advanced() -> None:
    clock = SimClock()
    clock.freeze()
    frozen = clock.now()
    assert clock.now() == frozen
    clock.advance(90)
    assert clock.now() == frozen + timedelta(seconds=90)
    clock.unfreeze()
    assert timedelta(0) <= clock.now() - (frozen + timedelta(seconds=90)) < timedelta(seconds=5)
    assert clock.now().utcoffset() == timedelta(0)


def test_stop_is_idempotent_and_closes_the_port() -> None:
    sim = Pan123Simulator().start()
    url = sim.url
    sim.stop()
    sim.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/__sim/requests", timeout=1)


def test_the_server_stops_itself_after_its_lifetime() -> None:
    sim = Pan123Simulator().start(lifetime_s=0.05)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            requests.get(sim.url + "/__sim/requests", timeout=1)
        except requests.ConnectionError:
            return
        time.sleep(0.02)
    pytest.fail("the simulator outlived its lifetime")
