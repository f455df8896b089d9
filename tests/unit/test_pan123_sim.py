"""The 123pan simulator, exercised over real HTTP on 127.0.0.1."""

from __future__ import annotations

import base64
import http.client
import json
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from local.simulators.base import Faults, SimClock
from local.simulators.pan123 import FIRST_USER_ID, Pan123Simulator

TOKEN_PATH = "/api/v1/access_token"
CREATE_PATH = "/api/v1/share/create"
LIST_PATH = "/api/v1/share/list"
INFO_PATH = "/api/v1/share/list/info"
VALID_SHARE = {"shareName": "测试分享链接", "shareExpire": 1, "fileIDList": "14713526,10861131"}
CREDENTIALS = {"clientID": "sim-client", "clientSecret": "sim-secret"}
ROOT = Path(__file__).resolve().parents[2]


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


def recorded_over_http(sim: Pan123Simulator) -> list[dict[str, Any]]:
    response = requests.get(sim.url + "/__sim/requests", timeout=30)
    assert response.status_code == 200
    return response.json()


def wait_for(condition: Callable[[], object], timeout_s: float = 5) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("the simulator did not get there in time")
        time.sleep(0.02)


def jwt_part(token: str, index: int) -> bytes:
    part = token.split(".")[index]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


# --- access token


def test_token_expires_30_days_later_in_utc8(sim: Pan123Simulator) -> None:
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


def test_a_share_made_under_a_timeout_is_listed_as_requested(sim: Pan123Simulator) -> None:
    """The client gave up, the simulator made the share anyway: the list shows it with the request's settings."""
    sim.clock.freeze()
    token = sim.issue_token()
    sim.faults.add("timeout", method="POST", path=CREATE_PATH, delay=0.3)
    body = {**VALID_SHARE, "shareExpire": 7, "sharePwd": "k9", "trafficSwitch": 2}
    with pytest.raises(requests.Timeout):
        call(sim, "POST", CREATE_PATH, token=token, json=body, timeout=0.05)
    wait_for(lambda: sim.shares)
    (item,) = list_shares(sim, token, limit=100)["data"]["shareList"]
    week_later_in_beijing = sim.clock.now() + timedelta(days=7, hours=8)
    assert (item["shareName"], item["expiration"], item["sharePwd"], item["trafficSwitch"]) == (
        body["shareName"],
        week_later_in_beijing.strftime("%Y-%m-%d %H:%M:%S"),
        "k9",
        2,
    )
    assert item["shareId"] == next(iter(sim.shares))


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


# --- what real clients send


def test_the_token_call_takes_a_form_encoded_body(sim: Pan123Simulator) -> None:
    answer = envelope(call(sim, "POST", TOKEN_PATH, data=CREDENTIALS))
    assert answer["code"] == 0
    assert sim.live_tokens() == [answer["data"]["accessToken"]]
    assert sim.requests[0].headers["Content-Type"] == "application/x-www-form-urlencoded"
    wrong = envelope(call(sim, "POST", TOKEN_PATH, data={**CREDENTIALS, "clientSecret": "wrong"}))
    assert wrong["code"] == 401


def test_only_the_token_call_takes_a_form_body(sim: Pan123Simulator) -> None:
    answer = envelope(call(sim, "POST", CREATE_PATH, token=sim.issue_token(), data=VALID_SHARE))
    assert (answer["code"], answer["message"]) == (1, "request body must be a JSON object")


def test_a_form_encoded_token_call_is_refused_when_switched_off() -> None:
    with Pan123Simulator(token_form_body=False) as sim:
        answer = envelope(call(sim, "POST", TOKEN_PATH, data=CREDENTIALS))
        assert (answer["code"], answer["message"]) == (1, "request body must be a JSON object")


def test_body_and_query_keys_match_without_regard_to_case(sim: Pan123Simulator) -> None:
    sim.clock.freeze()
    login = {"clientid": "sim-client", "CLIENTSECRET": "sim-secret"}
    token = envelope(call(sim, "POST", TOKEN_PATH, json=login))["data"]["accessToken"]
    lower_case = {"sharename": "小写", "shareexpire": 7, "fileidlist": "1,2", "sharepwd": "pw", "trafficswitch": 2}
    share_id = envelope(call(sim, "POST", CREATE_PATH, token=token, json=lower_case))["data"]["shareID"]
    assert update(sim, token, {"shareidlist": [share_id], "trafficlimitswitch": 2, "TrafficLimit": 5})["code"] == 0
    page = list_shares(sim, token, LIMIT=10, lastshareid=0)["data"]
    (item,) = page["shareList"]
    assert (item["shareName"], item["sharePwd"], item["trafficSwitch"], item["trafficLimitSwitch"]) == (
        "小写",
        "pw",
        2,
        2,
    )
    assert (item["trafficLimit"], sim.shares[share_id]["fileIds"], page["lastShareId"]) == (5, [1, 2], -1)
    assert sim.requests[1].body == lower_case  # recorded as sent


def test_of_two_spellings_of_a_key_the_later_wins(sim: Pan123Simulator) -> None:
    token = sim.issue_token()
    share_id = create(sim, token, sharename="later")["data"]["shareID"]
    assert sim.shares[share_id]["shareName"] == "later"


def test_keys_are_case_sensitive_when_switched_off() -> None:
    with Pan123Simulator(keys_ignore_case=False) as sim:
        token = sim.issue_token()
        lower_case = {"sharename": "小写", "shareexpire": 7, "fileidlist": "1"}
        refused = envelope(call(sim, "POST", CREATE_PATH, token=token, json=lower_case))
        assert refused["code"] == 1 and "shareName" in refused["message"]
        assert "limit" in list_shares(sim, token, LIMIT=10)["message"]


def test_tokens_are_jwts_carrying_exp_and_the_user_id() -> None:
    with Pan123Simulator(clients={"a": "secret-a", "b": "secret-b"}) as sim:
        data = ask_token(sim, "b", "secret-b")["data"]
        token = data["accessToken"]
        assert token.startswith("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJl")  # as the docs' example token begins
        assert json.loads(jwt_part(token, 0)) == {"alg": "HS256", "typ": "JWT"}
        expires_at = int(datetime.fromisoformat(data["expiredAt"]).timestamp())
        assert json.loads(jwt_part(token, 1)) == {"exp": expires_at, "id": FIRST_USER_ID + 1}
        assert len(jwt_part(token, 2)) == 32
        forged = token.rsplit(".", 1)[0] + ".c2lnbmF0dXJl"
        assert list_shares(sim, forged, limit=1)["code"] == 401  # tokens are looked up, never verified
        assert list_shares(sim, token, limit=1)["code"] == 0


def test_tokens_are_opaque_when_switched_off() -> None:
    with Pan123Simulator(jwt_tokens=False) as sim:
        token = ask_token(sim)["data"]["accessToken"]
        assert "." not in token and len(token) >= 40
        assert list_shares(sim, token, limit=1)["code"] == 0


# --- running alone


def test_the_simulator_runs_alone_until_interrupted() -> None:
    command = [sys.executable, "-m", "local.simulators", "123pan", "--port", "0"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        banner = [process.stdout.readline() for _ in range(5)]
        url = banner[0].split(" on ")[1].strip()
        answer = requests.post(f"{url}{TOKEN_PATH}", headers={"Platform": "open_platform"}, json=CREDENTIALS, timeout=5)
        assert answer.json()["code"] == 0
    finally:
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=10)
    assert "clientID sim-client, clientSecret sim-secret" in banner[1]
    assert "14713526, 10861131" in banner[2]
    assert banner[4] == "Ctrl-C stops it.\n"
    assert (process.returncode, stdout, stderr) == (0, "123pan simulator stopped\n", "")


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


def test_close_fault_drops_the_connection_before_anything_is_made(sim: Pan123Simulator) -> None:
    sim.faults.add("close")
    with pytest.raises(requests.ConnectionError):
        call(sim, "POST", CREATE_PATH, token=sim.issue_token(), json=VALID_SHARE)
    assert len(sim.requests) == 1
    assert sim.shares == {}


def test_close_after_fault_makes_the_share_then_drops_the_connection(sim: Pan123Simulator) -> None:
    token = sim.issue_token()
    sim.faults.add("close_after", path=CREATE_PATH)
    with pytest.raises(requests.ConnectionError):
        call(sim, "POST", CREATE_PATH, token=token, json=VALID_SHARE)
    assert len(sim.requests) == len(sim.shares) == 1
    (item,) = list_shares(sim, token, limit=10)["data"]["shareList"]
    assert item["shareName"] == VALID_SHARE["shareName"]


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


def test_faults_match_the_method_too(sim: Pan123Simulator) -> None:
    token = sim.issue_token()
    sim.faults.add("code", method="post", path=CREATE_PATH, code=5113, message="quota")
    assert call(sim, "GET", CREATE_PATH, token=token).status_code == 404  # another method: the fault stays planned
    assert create(sim, token)["code"] == 5113
    sim.faults.add("http500", method="PUT")
    assert list_shares(sim, token, limit=1)["code"] == 0
    assert call(sim, "PUT", INFO_PATH, token=token, json={"shareIdList": [1]}).status_code == 500


def test_a_fault_for_a_method_is_found_by_path_alone() -> None:
    """What a test asks to see whether a fault was left unused for a path, whatever its method."""
    faults = Faults()
    faults.add("http500", method="POST", path="/a")
    assert faults.take("/a", "GET") is None
    taken = faults.take("/a")
    assert taken is not None and (taken.method, taken.path) == ("POST", "/a")
    with pytest.raises(ValueError, match="method"):
        faults.add("close", method=1)  # type: ignore[arg-type]


def test_a_fault_for_a_body_meets_only_the_request_that_holds_its_fields(sim: Pan123Simulator) -> None:
    """Whatever order requests arrive in, the fault meets the one it was planned for, and only once."""
    token = sim.issue_token()
    plan = {"kind": "code", "method": "POST", "path": CREATE_PATH, "body": {"shareName": "b"}, "code": 5113}
    assert requests.post(sim.url + "/__sim/faults", json=plan, timeout=5).status_code == 204
    assert len(sim.faults) == 1
    assert create(sim, token, shareName="a")["code"] == 0
    assert create(sim, token, shareName="b")["code"] == 5113
    assert create(sim, token, shareName="b")["code"] == 0
    assert len(sim.faults) == 0
    refused = {"kind": "close", "body": ["shareName"]}
    assert requests.post(sim.url + "/__sim/faults", json=refused, timeout=5).status_code == 400


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
    plan = {"kind": "code", "method": "POST", "path": CREATE_PATH, "code": 5113}
    assert requests.post(sim.url + "/__sim/faults", json=plan, timeout=5).status_code == 204
    token = sim.issue_token()
    assert call(sim, "GET", CREATE_PATH, token=token).status_code == 404
    assert create(sim, token)["code"] == 5113
    for refused in ({"kind": "meteor"}, {"kind": "close", "method": 5}, {"kind": "close", "path": ["/"]}):
        assert requests.post(sim.url + "/__sim/faults", json=refused, timeout=5).status_code == 400


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
    assert set(recorded[0]) == {"method", "path", "query", "headers", "body", "body_base64"}
    assert recorded[0]["body"] == VALID_SHARE
    assert recorded[0]["headers"]["Platform"] == "open_platform"
    assert recorded[0]["headers"]["Authorization"] == f"Bearer {token}"
    assert (recorded[1]["query"], recorded[1]["body"]) == ({"limit": "5", "lastShareId": "0"}, None)
    assert recorded[2]["body"] == "not json"
    assert len(sim.requests) == 3  # the control calls are not recorded


def test_a_body_that_is_not_utf8_is_recorded_as_base64(sim: Pan123Simulator) -> None:
    raw = b'{"shareName": "\xff\xfe"}'
    answer = envelope(call(sim, "POST", CREATE_PATH, token=sim.issue_token(), data=raw))
    assert (answer["code"], answer["message"]) == (1, "request body must be a JSON object")
    (recorded,) = recorded_over_http(sim)
    assert recorded["body_base64"] is True
    assert base64.b64decode(recorded["body"]) == raw


def test_lone_surrogates_are_recorded_stored_and_answered(sim: Pan123Simulator) -> None:
    token = sim.issue_token()
    body = '{"shareName": "a\\ud800b", "shareExpire": 1, "fileIDList": "1"}'  # JSON's escape of a lone surrogate
    assert envelope(call(sim, "POST", CREATE_PATH, token=token, data=body))["code"] == 0
    assert sim.requests[0].body["shareName"] == "a\ud800b"
    assert recorded_over_http(sim)[0]["body"]["shareName"] == "a\ud800b"
    assert list_shares(sim, token, limit=1)["data"]["shareList"][0]["shareName"] == "a\ud800b"


def test_huge_and_deeply_nested_bodies_are_recorded(sim: Pan123Simulator) -> None:
    huge = json.dumps({"shareName": "名" * 3_000_000}, ensure_ascii=False)
    deep = "[" * 100_000 + "]" * 100_000  # too deep for json.loads: kept as text
    for body in (huge, deep):
        answer = envelope(call(sim, "POST", CREATE_PATH, token=sim.issue_token(), data=body.encode(), timeout=30))
        assert answer["code"] == 1
    first, second = recorded_over_http(sim)
    assert first["body"] == json.loads(huge)
    assert (second["body"], second["body_base64"]) == (deep, False)


def test_odd_header_bytes_are_recorded(sim: Pan123Simulator) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", int(sim.url.rsplit(":", 1)[1]), timeout=5)
    connection.putrequest("GET", LIST_PATH + "?limit=1&name=%FF%FE")
    connection.putheader("Platform", "open_platform")
    connection.putheader("X-Odd", b"\xff\x01 caf\xc3\xa9")
    connection.endheaders()
    assert connection.getresponse().status == 200
    (recorded,) = recorded_over_http(sim)
    assert recorded["headers"]["X-Odd"] == b"\xff\x01 caf\xc3\xa9".decode("latin-1")
    assert recorded["query"] == {"limit": "1", "name": "\ufffd\ufffd"}


def test_a_bad_content_length_is_refused_and_not_recorded(sim: Pan123Simulator) -> None:
    with socket.create_connection(("127.0.0.1", int(sim.url.rsplit(":", 1)[1])), timeout=5) as connection:
        connection.sendall(f"POST {CREATE_PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: -3\r\n\r\n".encode())
        assert connection.recv(4096).startswith(b"HTTP/1.0 400")
    assert sim.requests == []
    assert recorded_over_http(sim) == []


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
