"""The KDocs simulator, exercised over real HTTP on 127.0.0.1."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from local.simulators.kdocs import DAILY_QUOTA_MESSAGE, PER_SECOND_MESSAGE, SHANGHAI, KdocsSimulator

EXCHANGE_PATH = "/api/v1/oauth2/access_token"
REFRESH_PATH = "/api/v1/oauth2/refresh_token"
CONSENT_PATH = "/h5/auth"
VALID_LINK = {"range": "anyone", "permission": "read"}
LINK_FIELDS = {"expire_time", "ext_perm_list", "link_permission", "link_url", "sid", "filename", "status"}
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sim() -> Iterator[KdocsSimulator]:
    with KdocsSimulator() as simulator:
        yield simulator


def links_path(file_token: str) -> str:
    return f"/api/v1/openapi/personal/files/{file_token}/links"


def envelope(response: requests.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status
    document = response.json()
    if document["code"] == 0:
        assert set(document) == {"code", "data"}
    else:
        assert set(document) == {"code", "msg", "data"}
        assert document["data"] is None
    return document


def call(sim: KdocsSimulator, method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
    params = kwargs.pop("params", {}) | ({} if token is None else {"access_token": token})
    return requests.request(method, sim.url + path, params=params, timeout=5, **kwargs)


def save_link(sim: KdocsSimulator, token: str | None, file_token: str = "doc-1", **fields: Any) -> dict[str, Any]:
    return envelope(call(sim, "POST", links_path(file_token), token, json={**VALID_LINK, **fields}))


def read_link(sim: KdocsSimulator, token: str | None, file_token: str = "doc-1") -> dict[str, Any]:
    return envelope(call(sim, "GET", links_path(file_token), token))


def access_token(sim: KdocsSimulator, **grant: str) -> str:
    return sim.issue_token(**grant)["access_token"]


def exchange(sim: KdocsSimulator, code: str, app_id: str = "sim-app", app_key: str = "sim-app-key") -> dict[str, Any]:
    return envelope(call(sim, "GET", EXCHANGE_PATH, params={"code": code, "app_id": app_id, "app_key": app_key}))


def refresh(
    sim: KdocsSimulator, refresh_token: str, app_id: str = "sim-app", app_key: str = "sim-app-key"
) -> dict[str, Any]:
    body = {"app_key": app_key, "refresh_token": refresh_token}
    return envelope(call(sim, "POST", REFRESH_PATH, params={"app_id": app_id}, json=body))


def advance_to(sim: KdocsSimulator, moment: datetime) -> None:
    sim.clock.advance((moment - sim.clock.now()).total_seconds())


# --- access token


def test_the_token_goes_in_the_query_only(sim: KdocsSimulator) -> None:
    token = access_token(sim)
    header_only = requests.get(sim.url + links_path("doc-1"), headers={"Authorization": f"Bearer {token}"}, timeout=5)
    refusal = envelope(header_only)
    assert (refusal["code"], refusal["msg"]) == (30001, "user unauthorized: access_token is required")
    assert save_link(sim, token)["code"] == 0


@pytest.mark.parametrize("token", ["", "kvqxrspxjctdojjqdildjhonzwusaquc"])
def test_unknown_tokens_are_unauthorized(sim: KdocsSimulator, token: str) -> None:
    assert save_link(sim, token)["code"] == 30001
    assert sim.links == {}


def test_access_tokens_live_24_hours_on_the_sim_clock(sim: KdocsSimulator) -> None:
    sim.clock.freeze()
    data = sim.issue_token()
    assert (data["expires_in"], data["app_id"]) == (86400, "sim-app")
    assert re.fullmatch(r"[a-z]{32}", data["access_token"])
    sim.clock.advance(86400 - 1)
    assert read_link(sim, data["access_token"])["code"] == 30014
    sim.clock.advance(1)
    refusal = read_link(sim, data["access_token"])
    assert (refusal["code"], refusal["msg"]) == (30001, "user unauthorized: access_token is expired")


def test_revoked_and_expired_tokens_are_refused(sim: KdocsSimulator) -> None:
    revoked, expired = access_token(sim), access_token(sim)
    sim.revoke(revoked)
    assert read_link(sim, revoked)["msg"] == "user unauthorized: access_token is invalid"
    sim.expire_tokens()
    assert read_link(sim, expired)["msg"] == "user unauthorized: access_token is expired"
    assert read_link(sim, access_token(sim))["code"] == 30014
    with pytest.raises(ValueError, match="unknown access token"):
        sim.revoke("nope")


@pytest.mark.parametrize("scope", ["", "read_personal_files"])
def test_the_edit_personal_files_scope_is_required(sim: KdocsSimulator, scope: str) -> None:
    refusal = save_link(sim, access_token(sim, scope=scope))
    assert refusal["code"] == 10003
    assert "edit_personal_files" in refusal["msg"]
    assert save_link(sim, access_token(sim, scope="read_personal_files, edit_personal_files"))["code"] == 0


def test_helpers_know_apps_and_users(sim: KdocsSimulator) -> None:
    for helper in (sim.issue_token, sim.authorize):
        with pytest.raises(ValueError, match="unknown app"):
            helper(app_id="nobody")
        with pytest.raises(ValueError, match="unknown user"):
            helper(user="nobody")
    with pytest.raises(ValueError, match="unknown user"):
        sim.add_file("x", "x.docx", owner="nobody")
    assert sim.requests == []


# --- files and check order


def test_a_file_owned_by_another_user_is_permission_denied(sim: KdocsSimulator) -> None:
    token = access_token(sim)
    for answer in (save_link(sim, token, "not-mine"), read_link(sim, token, "not-mine")):
        assert answer["code"] == 10003
        assert "share-edit" in answer["msg"]
    assert sim.links == {}
    assert save_link(sim, access_token(sim, user="other-user"), "not-mine")["data"]["filename"] == "boss.docx"


def test_an_unknown_file_is_30012(sim: KdocsSimulator) -> None:
    token = access_token(sim)
    for answer in (save_link(sim, token, "ghost"), read_link(sim, token, "ghost")):
        assert (answer["code"], answer["msg"]) == (30012, "file not exists")


def test_checks_run_token_then_file_then_body(sim: KdocsSimulator) -> None:
    token = access_token(sim)
    assert save_link(sim, "bad", "ghost", range="nobody")["code"] == 30001
    assert save_link(sim, token, "ghost", range="nobody")["code"] == 30012
    assert save_link(sim, token, "not-mine", range="nobody")["code"] == 10003
    assert save_link(sim, token, "doc-1", range="nobody")["code"] == 10001


def test_added_files_can_be_shared(sim: KdocsSimulator) -> None:
    sim.add_file("fresh", "新建.pptx")
    assert save_link(sim, access_token(sim), "fresh")["data"]["filename"] == "新建.pptx"


# --- link body validation


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"range": None}, "range"),
        ({"range": "everyone"}, "range"),
        ({"permission": None}, "permission"),
        ({"permission": "admin"}, "permission"),
        ({"permission": ["read"]}, "permission"),
        ({"status": "closed"}, "status"),
        ({"status": True}, "status"),
        ({"ext_perm_list": "comment"}, "ext_perm_list"),
        ({"ext_perm_list": ["edit"]}, "ext_perm_list"),
        ({"ext_perm_list": [1]}, "ext_perm_list"),
        ({"period": 1}, "period"),
        ({"period": "7"}, "period"),
        ({"period": True}, "period"),
        ({"period": 7.0}, "period"),
        ({"reset": "true"}, "reset"),
        ({"reset": 1}, "reset"),
    ],
)
def test_link_fields_are_validated(sim: KdocsSimulator, fields: dict[str, Any], named: str) -> None:
    body = {name: value for name, value in {**VALID_LINK, **fields}.items() if value is not None}
    answer = envelope(call(sim, "POST", links_path("doc-1"), access_token(sim), json=body))
    assert answer["code"] == 10001
    assert named in answer["msg"]
    assert sim.links == {}


@pytest.mark.parametrize("payload", [{"json": [VALID_LINK]}, {"data": "range=anyone"}, {}])
def test_the_body_must_be_an_object(sim: KdocsSimulator, payload: dict[str, Any]) -> None:
    answer = envelope(call(sim, "POST", links_path("doc-1"), access_token(sim), **payload))
    assert (answer["code"], answer["msg"]) == (10001, "invalid argument: the body must be a JSON object")


def test_nulls_and_unknown_fields_are_accepted(sim: KdocsSimulator) -> None:
    answer = save_link(sim, access_token(sim), status=None, period=None, ext_perm_list=["comment", "comment"], x=1)
    assert (answer["data"]["status"], answer["data"]["expire_time"], answer["data"]["ext_perm_list"]) == (
        "open",
        0,
        ["comment"],
    )


# --- link semantics


def test_create_answers_the_documented_fields(sim: KdocsSimulator) -> None:
    data = save_link(sim, access_token(sim), "777")["data"]
    assert set(data) == LINK_FIELDS
    assert re.fullmatch(r"[A-Za-z0-9]{12}", data["sid"])
    assert data["link_url"] == f"https://kdocs.cn/l/{data['sid']}"
    assert (data["filename"], data["link_permission"], data["status"]) == ("demo.docx", "read", "open")
    assert (data["expire_time"], data["ext_perm_list"]) == (0, [])
    assert sim.links["777"] == data


def test_update_keeps_the_sid_and_unsent_settings(sim: KdocsSimulator) -> None:
    token = access_token(sim)
    created = save_link(sim, token, period=7, ext_perm_list=["comment"])["data"]
    updated = save_link(sim, token, permission="write")["data"]
    assert updated == {**created, "link_permission": "write"}
    assert save_link(sim, token, permission="write", ext_perm_list=[], period=0)["data"] == {
        **updated,
        "ext_perm_list": [],
        "expire_time": 0,
    }
    assert sim.retired_sids == set()


def test_close_then_update_reopens_the_same_sid(sim: KdocsSimulator) -> None:
    token = access_token(sim)
    sid = save_link(sim, token)["data"]["sid"]
    closed = save_link(sim, token, status="close")["data"]
    assert (closed["sid"], closed["status"]) == (sid, "close")
    assert read_link(sim, token)["data"]["status"] == "close"
    assert sim.open_link(sid) is None
    reopened = save_link(sim, token)["data"]
    assert (reopened["sid"], reopened["status"]) == (sid, "open")
    assert sim.open_link(sid) == reopened


def test_reset_retires_the_old_sid_and_starts_afresh(sim: KdocsSimulator) -> None:
    token = access_token(sim)
    old = save_link(sim, token, period=30, ext_perm_list=["comment"])["data"]
    new = save_link(sim, token, reset=True)["data"]
    assert new["sid"] != old["sid"]
    assert (new["expire_time"], new["ext_perm_list"]) == (0, [])
    assert sim.retired_sids == {old["sid"]}
    assert sim.open_link(old["sid"]) is None
    assert sim.open_link(new["sid"]) == new
    assert read_link(sim, token)["data"] == new


def test_reset_on_a_file_without_link_just_creates(sim: KdocsSimulator) -> None:
    assert save_link(sim, access_token(sim), reset=True)["code"] == 0
    assert sim.retired_sids == set()


def test_links_are_one_per_file(sim: KdocsSimulator) -> None:
    token = access_token(sim)
    sids = {save_link(sim, token, file_token)["data"]["sid"] for file_token in ("777", "doc-1", "doc-2")}
    assert len(sids) == 3
    assert set(sim.links) == {"777", "doc-1", "doc-2"}


def test_read_answers_the_current_link_or_30014(sim: KdocsSimulator) -> None:
    token = access_token(sim)
    refusal = read_link(sim, token)
    assert (refusal["code"], refusal["msg"]) == (30014, "link not exists")
    created = save_link(sim, token, permission="write")["data"]
    assert read_link(sim, token)["data"] == created


def test_period_sets_expire_time_on_the_sim_clock(sim: KdocsSimulator) -> None:
    sim.clock.freeze()
    token = access_token(sim)
    week = save_link(sim, token, period=7)["data"]
    assert week["expire_time"] == int(sim.clock.now().timestamp()) + 7 * 86400
    sim.clock.advance(3600)
    month = save_link(sim, token, period=30)["data"]
    assert (month["sid"], month["expire_time"]) == (week["sid"], int(sim.clock.now().timestamp()) + 30 * 86400)
    assert save_link(sim, token, period=0)["data"]["expire_time"] == 0


def test_an_expired_link_is_dead_but_still_the_files_link(sim: KdocsSimulator) -> None:
    sim.clock.freeze()
    token = access_token(sim)
    link = save_link(sim, token, period=7)["data"]
    sim.clock.advance(7 * 86400 - 1)
    assert sim.open_link(link["sid"]) == link
    sim.clock.advance(1)
    assert sim.open_link(link["sid"]) is None
    token = access_token(sim)  # the first one expired long ago
    assert read_link(sim, token)["data"] == link
    revived = save_link(sim, token, period=7)["data"]
    assert revived["sid"] == link["sid"]
    assert sim.open_link(link["sid"]) == revived


# --- daily quota


def test_the_daily_quota_counts_refused_calls_and_resets_at_shanghai_midnight() -> None:
    with KdocsSimulator(daily_quota=3) as sim:
        sim.clock.freeze()
        shanghai_now = sim.clock.now().astimezone(SHANGHAI)
        advance_to(sim, datetime.combine(shanghai_now.date() + timedelta(days=1), datetime.min.time(), SHANGHAI))
        sim.clock.advance(0.5)
        token = access_token(sim)
        assert read_link(sim, None)["code"] == 30001  # not counted: no app known
        answers = [save_link(sim, token), read_link(sim, token, "ghost"), read_link(sim, token), read_link(sim, token)]
        assert [answer["code"] for answer in answers] == [0, 30012, 0, 30002]
        assert answers[-1]["msg"].startswith("rate limiter")
        sim.clock.advance(8 * 3600)  # UTC midnight: still the same Shanghai day
        assert read_link(sim, token)["code"] == 30002
        sim.clock.advance(16 * 3600 - 1)
        assert read_link(sim, token)["code"] == 30002
        sim.clock.advance(1)
        assert read_link(sim, access_token(sim))["code"] == 0


def test_a_used_up_daily_quota_says_so_without_retry_after() -> None:
    with KdocsSimulator(daily_quota=1) as sim:
        token = access_token(sim)
        assert read_link(sim, token)["code"] == 30014
        for errors_as_http_status, status in ((False, 200), (True, 429)):
            sim.errors_as_http_status = errors_as_http_status
            response = call(sim, "GET", links_path("doc-1"), token)
            assert envelope(response, status) == {
                "code": 30002,
                "msg": "rate limiter: daily quota used up: the app's 1 calls for today are spent",
                "data": None,
            }
            assert "Retry-After" not in response.headers


def test_the_per_second_rate_is_off_unless_set_and_says_per_second() -> None:
    with KdocsSimulator() as sim:
        sim.clock.freeze()
        token = access_token(sim)
        assert all(read_link(sim, token)["code"] == 30014 for _ in range(20))
    with KdocsSimulator(qps=2, daily_quota=4) as sim:
        sim.clock.freeze()
        token = access_token(sim)
        answers = [call(sim, "GET", links_path("doc-1"), token) for _ in range(3)]
        assert [envelope(answer)["code"] for answer in answers] == [30014, 30014, 30002]
        assert answers[-1].json()["msg"] == PER_SECOND_MESSAGE
        assert "Retry-After" not in answers[-1].headers
        sim.clock.advance(1)
        assert read_link(sim, token)["code"] == 30014
        assert read_link(sim, token)["msg"] == DAILY_QUOTA_MESSAGE.format(quota=4)


def test_the_two_rate_limit_messages_can_be_told_apart() -> None:
    daily_words = ("quota", "today", "daily", "per day")
    assert all(word not in PER_SECOND_MESSAGE for word in daily_words)
    assert "daily quota" in DAILY_QUOTA_MESSAGE


def test_the_quota_is_per_app_and_spares_oauth_and_unknown_paths() -> None:
    with KdocsSimulator(apps={"a": "key-a", "b": "key-b"}, daily_quota=1) as sim:
        sim.clock.freeze()
        first = access_token(sim, app_id="a")
        assert call(sim, "GET", "/api/v1/openapi/personal/files", first).status_code == 404
        code = sim.authorize(app_id="a")
        second = exchange(sim, code, "a", "key-a")["data"]["access_token"]
        assert [read_link(sim, token)["code"] for token in (first, second)] == [30014, 30002]
        assert read_link(sim, access_token(sim, app_id="b"))["code"] == 30014


# --- errors as HTTP status


@pytest.fixture
def http_sim() -> Iterator[KdocsSimulator]:
    with KdocsSimulator(errors_as_http_status=True) as simulator:
        yield simulator


def test_errors_as_http_status_keep_the_envelope(http_sim: KdocsSimulator) -> None:
    token = access_token(http_sim)
    cases = [
        (call(http_sim, "POST", links_path("doc-1"), token, json={}), 10001, 400),
        (call(http_sim, "GET", links_path("doc-1")), 30001, 401),
        (call(http_sim, "GET", links_path("not-mine"), token), 10003, 403),
        (call(http_sim, "GET", links_path("ghost"), token), 30012, 404),
        (call(http_sim, "GET", links_path("doc-1"), token), 30014, 404),
        (call(http_sim, "GET", CONSENT_PATH, params={"app_id": "nobody"}), 20002, 400),
    ]
    for response, code, status in cases:
        assert envelope(response, status)["code"] == code
    assert envelope(call(http_sim, "POST", links_path("doc-1"), token, json=VALID_LINK))["code"] == 0


def test_quota_and_internal_errors_as_http_status(http_sim: KdocsSimulator) -> None:
    token = access_token(http_sim)
    http_sim.faults.add("code", code=30004, msg="internal error")
    assert envelope(call(http_sim, "GET", links_path("doc-1"), token), 500)["msg"] == "internal error"
    http_sim.daily_quota = 0
    assert envelope(call(http_sim, "GET", links_path("doc-1"), token), 429)["code"] == 30002


def test_errors_as_http_status_switch_at_runtime(sim: KdocsSimulator) -> None:
    assert envelope(call(sim, "GET", links_path("doc-1")))["code"] == 30001
    sim.errors_as_http_status = True
    assert envelope(call(sim, "GET", links_path("doc-1")), 401)["code"] == 30001


# --- OAuth: code exchange


def test_a_code_is_exchanged_once_for_working_tokens(sim: KdocsSimulator) -> None:
    code = sim.authorize()
    data = exchange(sim, code)["data"]
    assert set(data) == {"access_token", "refresh_token", "expires_in", "app_id"}
    assert (data["expires_in"], data["app_id"]) == (86400, "sim-app")
    assert save_link(sim, data["access_token"])["code"] == 0
    again = exchange(sim, code)
    assert (again["code"], again["msg"]) == (10001, "invalid argument: code is invalid, expired or already used")


def test_a_code_lives_5_minutes(sim: KdocsSimulator) -> None:
    sim.clock.freeze()
    late, on_time = sim.authorize(), sim.authorize()
    sim.clock.advance(299)
    assert exchange(sim, on_time)["code"] == 0
    sim.clock.advance(1)
    assert exchange(sim, late)["code"] == 10001


def test_the_exchange_checks_the_app_before_the_code() -> None:
    with KdocsSimulator(apps={"sim-app": "sim-app-key", "other": "other-key"}) as sim:
        code = sim.authorize()
        assert exchange(sim, code, app_id="nobody")["code"] == 20002
        assert exchange(sim, code, app_key="wrong")["code"] == 30001
        assert exchange(sim, code, "other", "other-key")["code"] == 10001
        assert exchange(sim, "")["code"] == 10001
        assert exchange(sim, code)["code"] == 0


def test_the_grant_carries_user_and_scope(sim: KdocsSimulator) -> None:
    other = exchange(sim, sim.authorize(user="other-user"))["data"]["access_token"]
    assert save_link(sim, other, "not-mine")["code"] == 0
    narrow = exchange(sim, sim.authorize(scope="read_personal_files"))["data"]["access_token"]
    assert save_link(sim, narrow)["code"] == 10003


# --- OAuth: refresh


def test_refresh_rotates_by_default(sim: KdocsSimulator) -> None:
    first = sim.issue_token()
    second = refresh(sim, first["refresh_token"])["data"]
    assert set(second) == {"access_token", "refresh_token", "expires_in", "app_id"}
    assert len({first["access_token"], second["access_token"], first["refresh_token"], second["refresh_token"]}) == 4
    assert refresh(sim, first["refresh_token"])["code"] == 30001
    assert read_link(sim, first["access_token"])["code"] == 30014  # old access tokens live on
    assert read_link(sim, second["access_token"])["code"] == 30014
    assert refresh(sim, second["refresh_token"])["code"] == 0


def test_refresh_without_rotation_keeps_the_old_refresh_token() -> None:
    with KdocsSimulator(rotate_refresh_tokens=False) as sim:
        first = sim.issue_token()
        answers = [refresh(sim, first["refresh_token"])["data"] for _ in range(2)]
        assert all(set(data) == {"access_token", "expires_in", "app_id"} for data in answers)
        assert answers[0]["access_token"] != answers[1]["access_token"]
        sim.rotate_refresh_tokens = True
        assert "refresh_token" in refresh(sim, first["refresh_token"])["data"]


def test_refresh_tokens_live_90_days(sim: KdocsSimulator) -> None:
    sim.clock.freeze()
    sim.rotate_refresh_tokens = False
    refresh_token = sim.issue_token()["refresh_token"]
    sim.clock.advance(90 * 86400 - 1)
    assert refresh(sim, refresh_token)["code"] == 0
    sim.clock.advance(1)
    refusal = refresh(sim, refresh_token)
    assert (refusal["code"], refusal["msg"]) == (30001, "user unauthorized: refresh_token is invalid or expired")


def test_an_expired_access_token_is_renewed_by_refresh(sim: KdocsSimulator) -> None:
    first = sim.issue_token()
    sim.expire_tokens()
    renewed = refresh(sim, first["refresh_token"])["data"]["access_token"]
    assert read_link(sim, renewed)["code"] == 30014


def test_refresh_refusals(sim: KdocsSimulator) -> None:
    refresh_token = sim.issue_token()["refresh_token"]
    assert refresh(sim, refresh_token, app_id="nobody")["code"] == 20002
    assert refresh(sim, refresh_token, app_key="wrong")["code"] == 30001
    assert refresh(sim, "unknown")["code"] == 30001
    no_token = envelope(call(sim, "POST", REFRESH_PATH, params={"app_id": "sim-app"}, json={"app_key": "sim-app-key"}))
    assert (no_token["code"], no_token["msg"]) == (10001, "invalid argument: refresh_token is required")
    not_object = envelope(call(sim, "POST", REFRESH_PATH, params={"app_id": "sim-app"}, data="x"))
    assert not_object["code"] == 10001
    assert refresh(sim, refresh_token)["code"] == 0


# --- OAuth: browser consent


def test_consent_redirects_with_code_and_state(sim: KdocsSimulator) -> None:
    params = {
        "app_id": "sim-app",
        "scope": "edit_personal_files",
        "redirect_uri": "http://127.0.0.1:9/cb",
        "state": "xyz",
    }
    response = call(sim, "GET", CONSENT_PATH, params=params, allow_redirects=False)
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == "http://127.0.0.1:9/cb"
    returned = parse_qs(location.query)
    assert returned["state"] == ["xyz"]
    token = exchange(sim, returned["code"][0])["data"]["access_token"]
    assert save_link(sim, token)["code"] == 0


def test_consent_keeps_the_redirect_uris_own_query(sim: KdocsSimulator) -> None:
    params = {"app_id": "sim-app", "scope": "edit_personal_files", "redirect_uri": "http://127.0.0.1:9/cb?x=1"}
    location = call(sim, "GET", CONSENT_PATH, params=params, allow_redirects=False).headers["Location"]
    assert parse_qs(urlsplit(location).query, keep_blank_values=True).keys() == {"x", "code", "state"}


def test_consent_refusals(sim: KdocsSimulator) -> None:
    unknown = envelope(call(sim, "GET", CONSENT_PATH, params={"app_id": "nobody", "redirect_uri": "http://x/cb"}))
    assert (unknown["code"], unknown["msg"]) == (20002, "app not exist")
    assert envelope(call(sim, "GET", CONSENT_PATH, params={"app_id": "sim-app"}))["code"] == 10001
    assert sim.codes == {}


# --- routing


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/nothing"),
        ("PUT", links_path("doc-1")),
        ("POST", EXCHANGE_PATH),
        ("GET", REFRESH_PATH),
        ("GET", links_path("a/b")),
    ],
)
def test_unknown_routes_answer_http_404(sim: KdocsSimulator, method: str, path: str) -> None:
    response = call(sim, method, path, access_token(sim))
    assert (response.status_code, response.json()) == (404, {"code": 404, "msg": "not found"})


# --- faults


def test_expire_token_fault(sim: KdocsSimulator) -> None:
    token = sim.issue_token()
    sim.faults.add("expire_token")
    assert read_link(sim, token["access_token"])["msg"] == "user unauthorized: access_token is expired"
    renewed = refresh(sim, token["refresh_token"])["data"]["access_token"]
    assert read_link(sim, renewed)["code"] == 30014


def test_code_fault_answers_its_envelope_and_changes_nothing(sim: KdocsSimulator) -> None:
    token = access_token(sim)
    sim.faults.add("code", path=links_path("doc-1"), times=2, code=40008, msg="account upgrading")
    assert read_link(sim, token, "doc-2")["code"] == 30014
    answers = [save_link(sim, token) for _ in range(3)]
    assert [(answer["code"], answer.get("msg")) for answer in answers] == [
        (40008, "account upgrading"),
        (40008, "account upgrading"),
        (0, None),
    ]


def test_common_faults(sim: KdocsSimulator) -> None:
    token = access_token(sim)
    sim.faults.add("http500")
    sim.faults.add("http429")
    sim.faults.add("close")
    assert call(sim, "GET", links_path("doc-1"), token).status_code == 500
    throttled = call(sim, "GET", links_path("doc-1"), token)
    assert (throttled.status_code, throttled.json()) == (429, {"code": 429, "msg": "rate limiter", "data": None})
    with pytest.raises(requests.ConnectionError):
        call(sim, "GET", links_path("doc-1"), token)
    assert sim.links == {}


def test_close_after_fault_saves_the_link_then_drops_the_connection(sim: KdocsSimulator) -> None:
    token = access_token(sim)
    sim.faults.add("close_after", method="POST")
    assert read_link(sim, token)["code"] == 30014  # a GET: the fault stays planned
    with pytest.raises(requests.ConnectionError):
        save_link(sim, token)
    assert read_link(sim, token)["data"] == sim.links["doc-1"]


def test_close_fault_drops_the_connection_before_the_link_is_saved(sim: KdocsSimulator) -> None:
    token = access_token(sim)
    sim.faults.add("close", method="POST", path=links_path("doc-1"))
    with pytest.raises(requests.ConnectionError):
        save_link(sim, token)
    assert sim.links == {}


def test_faults_can_be_planned_over_http(sim: KdocsSimulator) -> None:
    planned = requests.post(sim.url + "/__sim/faults", json={"kind": "code", "code": 30004, "msg": "boom"}, timeout=5)
    assert planned.status_code == 204
    assert exchange(sim, sim.authorize())["code"] == 30004
    assert requests.post(sim.url + "/__sim/faults", json={"kind": "meteor"}, timeout=5).status_code == 400


# --- recording and reset


def test_provider_calls_are_recorded_with_their_query(sim: KdocsSimulator) -> None:
    data = sim.issue_token()
    code = sim.authorize()
    assert sim.requests == []  # helpers are not provider calls
    save_link(sim, data["access_token"], period=7)
    exchange(sim, code)
    refresh(sim, data["refresh_token"])
    call(sim, "GET", CONSENT_PATH, params={"app_id": "sim-app", "redirect_uri": "http://x/cb"}, allow_redirects=False)
    recorded = requests.get(sim.url + "/__sim/requests", timeout=5).json()
    assert [(entry["method"], entry["path"]) for entry in recorded] == [
        ("POST", links_path("doc-1")),
        ("GET", EXCHANGE_PATH),
        ("POST", REFRESH_PATH),
        ("GET", CONSENT_PATH),
    ]
    assert set(recorded[0]) == {"method", "path", "query", "headers", "body", "body_base64"}
    assert recorded[0]["query"] == {"access_token": data["access_token"]}
    assert recorded[0]["body"] == {**VALID_LINK, "period": 7}
    assert recorded[1]["query"] == {"code": code, "app_id": "sim-app", "app_key": "sim-app-key"}
    assert recorded[2]["body"] == {"app_key": "sim-app-key", "refresh_token": data["refresh_token"]}


def test_reset_forgets_links_and_credentials_but_keeps_files(sim: KdocsSimulator) -> None:
    sim.add_file("fresh", "fresh.docx")
    token = access_token(sim)
    save_link(sim, token, "fresh")
    save_link(sim, token, "fresh", reset=True)
    sim.authorize()
    assert requests.post(sim.url + "/__sim/reset", timeout=5).status_code == 204
    assert (sim.links, sim.retired_sids, sim.tokens, sim.refresh_tokens, sim.codes, sim.requests) == (
        {},
        set(),
        {},
        {},
        {},
        [],
    )
    assert read_link(sim, token, "fresh")["code"] == 30001
    assert read_link(sim, access_token(sim), "fresh")["code"] == 30014


# --- running alone


def test_the_simulator_runs_alone_until_terminated() -> None:
    command = [sys.executable, "-m", "local.simulators", "kdocs", "--port", "0"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        banner = [process.stdout.readline() for _ in range(6)]
        consent = banner[3].split("consent: ")[1].strip()
        redirect = requests.get(consent, allow_redirects=False, timeout=5)
        assert redirect.status_code == 302
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=10)
    assert banner[0].startswith("KDocs simulator on http://127.0.0.1:")
    assert "app_id sim-app, app_key sim-app-key" in banner[1]
    assert "777 (demo.docx, owner sim-user)" in banner[2]
    assert (process.returncode, stdout, stderr) == (0, "kdocs simulator stopped\n", "")
