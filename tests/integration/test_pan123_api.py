"""The 123pan API handler, invoked with real-shaped events, against moto and the 123pan simulator."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import PAN123_SECRET, invoke, load_event

DOCS_EXAMPLE = {"shareName": "测试分享链接", "shareExpire": 1, "fileIDList": "14713526,10861131"}


def create(pan123_api, body):
    return invoke(pan123_api, load_event("pan123_create.json", body=body))


def provider_calls(sim, path):
    return [call for call in sim.requests if call.path == path]


def test_docs_example_body_creates_a_share(pan123_api, pan123_sim):
    before = datetime.now(UTC).replace(microsecond=0)
    status, headers, share = invoke(pan123_api, load_event("pan123_create.json"))

    assert status == 201
    assert headers["Content-Type"] == "application/json"
    stored = pan123_sim.shares[int(share["share_id"])]
    assert share == {
        "provider": "123pan",
        "share_id": str(stored["shareId"]),
        "share_key": stored["shareKey"],
        "url": f"https://www.123pan.com/s/{stored['shareKey']}",
        "password": None,
        "expires_at": share["expires_at"],
        "permission": None,
        "name": "测试分享链接",
        "file_ids": ["14713526", "10861131"],
        "provider_request_id": share["provider_request_id"],
    }
    expires_at = datetime.fromisoformat(share["expires_at"])
    assert before + timedelta(days=1) <= expires_at <= datetime.now(UTC) + timedelta(days=1)
    assert share["expires_at"].endswith("Z")
    assert share["provider_request_id"].endswith("_kong-sim")


def test_outbound_request_is_exactly_what_share_create_md_says(pan123_api, pan123_sim, aws):
    create(pan123_api, DOCS_EXAMPLE | {"sharePwd": "x1y2", "trafficSwitch": 2})

    (call,) = pan123_sim.requests
    token = stored_secret(aws)["access_token"]
    assert (call.method, call.path, call.query) == ("POST", "/api/v1/share/create", {})
    assert call.headers["Authorization"] == f"Bearer {token}"
    assert call.headers["Platform"] == "open_platform"
    assert call.headers["Content-Type"] == "application/json"
    assert call.body == {
        "shareName": "测试分享链接",
        "shareExpire": 1,
        "fileIDList": "14713526,10861131",
        "sharePwd": "x1y2",
        "trafficSwitch": 2,
    }


def stored_secret(aws) -> dict:
    return json.loads(aws.client("secretsmanager").get_secret_value(SecretId=PAN123_SECRET)["SecretString"])


def test_snake_case_body_with_every_field(pan123_api, pan123_sim):
    body = {
        "name": "季度报告",
        "expire_days": 0,
        "file_ids": [1, 2, 3],
        "password": "abcd",
        "traffic_switch": 4,
        "traffic_limit_switch": 2,
        "traffic_limit": 1073741824,
    }
    status, _, share = create(pan123_api, body)

    assert status == 201
    assert share["expires_at"] is None
    assert share["password"] == "abcd"
    assert share["file_ids"] == ["1", "2", "3"]
    assert pan123_sim.requests[-1].body == {
        "shareName": "季度报告",
        "shareExpire": 0,
        "fileIDList": "1,2,3",
        "sharePwd": "abcd",
        "trafficSwitch": 4,
        "trafficLimitSwitch": 2,
        "trafficLimit": 1073741824,
    }


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"name", "expire_days", "file_ids"}),
        ({"name": " ", "expire_days": 2, "file_ids": []}, {"name", "expire_days", "file_ids"}),
        ({"name": "a", "expire_days": True, "file_ids": [1]}, {"expire_days"}),
        ({"name": "a", "expire_days": "7", "file_ids": [1]}, {"expire_days"}),
        ({"name": "a", "expire_days": 7, "file_ids": [0, -1]}, {"file_ids[0]", "file_ids[1]"}),
        ({"name": "a", "expire_days": 7, "file_ids": list(range(1, 102))}, {"file_ids"}),
        ({"name": "a", "expire_days": 7, "file_ids": "1,x"}, {"file_ids[1]"}),
        ({"name": "a", "expire_days": 7, "file_ids": [1], "password": ""}, {"password"}),
        ({"name": "a", "expire_days": 7, "file_ids": [1], "traffic_switch": 5}, {"traffic_switch"}),
        ({"name": "a", "expire_days": 7, "file_ids": [1], "traffic_limit_switch": 0}, {"traffic_limit_switch"}),
        ({"name": "a", "expire_days": 7, "file_ids": [1], "traffic_limit": -1}, {"traffic_limit"}),
        ({"name": "a", "expire_days": 7, "file_ids": [1], "expiry_days": 7}, {"expiry_days"}),
        ({"shareName": 5, "shareExpire": 1, "fileIDList": "1"}, {"shareName"}),
    ],
)
def test_every_bad_field_is_named_and_nothing_reaches_the_provider(pan123_api, pan123_sim, body, fields):
    status, _, answer = create(pan123_api, body)

    assert status == 422
    assert answer["error"]["code"] == "invalid_request"
    assert {detail["field"] for detail in answer["error"]["details"]} == fields
    assert all(detail["problem"] for detail in answer["error"]["details"])
    assert answer["request_id"] == "JKJaXmPLvHcESHA="
    assert pan123_sim.requests == []


def test_expire_days_message_lists_the_allowed_values(pan123_api, pan123_sim):
    _, _, answer = create(pan123_api, {"name": "a", "expire_days": 2, "file_ids": [1]})

    assert answer["error"]["message"] == "expire_days: must be one of 0, 1, 7, 30"


@pytest.mark.parametrize("body", ["{not json", "[1, 2]", '"text"', "null", ""])
def test_a_body_that_is_not_a_json_object_is_malformed(pan123_api, pan123_sim, body):
    status, _, answer = create(pan123_api, body)

    assert (status, answer["error"]["code"]) == (400, "malformed_json")
    assert pan123_sim.requests == []


def test_unknown_file_is_provider_not_found(pan123_api, pan123_sim):
    status, _, answer = create(pan123_api, DOCS_EXAMPLE | {"fileIDList": "14713526,999999999"})

    assert status == 404
    assert answer["error"] | {"message": None} == {
        "code": "provider_not_found",
        "message": None,
        "details": [],
        "provider": "123pan",
        "provider_code": 5066,
    }
    assert "文件不存在" in answer["error"]["message"]


@pytest.mark.parametrize(
    ("fault", "status", "code", "provider_code"),
    [
        ({"kind": "code", "code": 1, "message": "分享名称包含特殊字符"}, 422, "provider_rejected", 1),
        ({"kind": "code", "code": 5113, "message": "流量包已用完"}, 422, "provider_rejected", 5113),
        ({"kind": "code", "code": 429, "message": "请求太频繁"}, 429, "provider_rate_limited", 429),
        ({"kind": "http429"}, 429, "provider_rate_limited", 429),
        ({"kind": "code", "code": 77777, "message": "新错误"}, 502, "provider_error", 77777),
        ({"kind": "http500"}, 502, "provider_error", None),
        ({"kind": "non_json"}, 502, "provider_error", None),
        ({"kind": "truncated_json"}, 502, "provider_error", None),
        ({"kind": "close"}, 504, "provider_timeout", None),  # dropped before the answer: outcome unknown
        ({"kind": "timeout", "delay": 3}, 504, "provider_timeout", None),
    ],
)
def test_provider_failures_map_to_the_error_table(pan123_api, pan123_sim, fault, status, code, provider_code):
    options = {key: value for key, value in fault.items() if key != "kind"}
    pan123_sim.faults.add(fault["kind"], path="/api/v1/share/create", **options)

    got_status, headers, answer = create(pan123_api, DOCS_EXAMPLE)

    assert (got_status, answer["error"]["code"]) == (status, code)
    assert answer["error"]["provider"] == "123pan"
    assert answer["error"]["provider_code"] == provider_code
    assert "Traceback" not in json.dumps(answer)
    if status == 429:
        assert int(headers["Retry-After"]) >= 1
    # share/create is never resent: a timed-out or failed create may already exist
    assert len(provider_calls(pan123_sim, "/api/v1/share/create")) == 1


def test_http_429_passes_the_providers_retry_after(pan123_api, pan123_sim):
    pan123_sim.faults.add("http429", path="/api/v1/share/create")

    _, headers, _ = create(pan123_api, DOCS_EXAMPLE)

    assert headers["Retry-After"] == "7"


def test_list_read_timeout_is_retried_because_listing_is_safe_to_repeat(pan123_api, pan123_sim):
    pan123_sim.faults.add("timeout", path="/api/v1/share/list", delay=3)

    status, _, page = invoke(pan123_api, load_event("pan123_list.json"))

    assert status == 200
    assert page == {"shares": [], "next_cursor": None}
    assert len(provider_calls(pan123_sim, "/api/v1/share/list")) == 2


def test_a_rotated_token_is_picked_up_by_one_fresh_read_of_the_secret(pan123_api, pan123_sim, aws):
    create(pan123_api, DOCS_EXAMPLE)  # caches the current token
    pan123_sim.expire_tokens()
    rotated = stored_secret(aws) | {"access_token": pan123_sim.issue_token()}
    aws.client("secretsmanager").put_secret_value(SecretId=PAN123_SECRET, SecretString=json.dumps(rotated))

    status, _, _ = create(pan123_api, DOCS_EXAMPLE)

    assert status == 201
    first, stale, fresh = (call.headers["Authorization"] for call in provider_calls(pan123_sim, "/api/v1/share/create"))
    assert stale == first
    assert fresh == f"Bearer {rotated['access_token']}"


def test_a_token_still_rejected_after_the_fresh_read_is_auth_failed(pan123_api, pan123_sim):
    pan123_sim.expire_tokens()

    status, _, answer = create(pan123_api, DOCS_EXAMPLE)

    assert (status, answer["error"]["code"]) == (502, "provider_auth_failed")
    assert answer["error"]["provider_code"] == 401
    assert len(provider_calls(pan123_sim, "/api/v1/share/create")) == 2
    assert pan123_sim.shares == {}


def test_a_missing_secret_is_an_internal_error_without_a_trace(pan123_api, pan123_sim, aws):
    aws.client("secretsmanager").delete_secret(SecretId=PAN123_SECRET, ForceDeleteWithoutRecovery=True)

    status, _, answer = create(pan123_api, DOCS_EXAMPLE)

    assert (status, answer["error"]["code"]) == (500, "internal_error")
    assert "Traceback" not in json.dumps(answer)
    assert pan123_sim.requests == []


def test_list_pages_with_the_providers_cursor(pan123_api, pan123_sim):
    created = [create(pan123_api, DOCS_EXAMPLE | {"shareName": f"s{i}"})[2] for i in range(3)]

    status, _, first = invoke(pan123_api, load_event("pan123_list.json"))
    _, _, second = invoke(
        pan123_api, load_event("pan123_list.json", query={"limit": "2", "cursor": first["next_cursor"]})
    )

    assert status == 200
    assert [share["share_id"] for share in first["shares"] + second["shares"]] == [s["share_id"] for s in created]
    assert first["next_cursor"] == created[1]["share_id"]
    assert second["next_cursor"] is None
    listed = first["shares"][0]
    assert {key: listed[key] for key in ("expired", "preview_count", "download_count", "save_count")} == {
        "expired": False,
        "preview_count": 0,
        "download_count": 0,
        "save_count": 0,
    }
    # the provider's UTC+8 "expiration" comes back as the same UTC moment the create answered
    drift = datetime.fromisoformat(listed["expires_at"]) - datetime.fromisoformat(created[0]["expires_at"])
    assert abs(drift) <= timedelta(seconds=2)
    calls = provider_calls(pan123_sim, "/api/v1/share/list")
    assert [call.query for call in calls] == [
        {"limit": "2", "lastShareId": "0"},
        {"limit": "2", "lastShareId": first["next_cursor"]},
    ]


def test_an_expired_share_is_listed_as_expired(pan123_api, pan123_sim):
    create(pan123_api, DOCS_EXAMPLE)
    pan123_sim.clock.advance(2 * 24 * 3600)

    _, _, page = invoke(pan123_api, load_event("pan123_list.json"))

    assert page["shares"][0]["expired"] is True


@pytest.mark.parametrize(
    ("query", "field"),
    [({"limit": "0"}, "limit"), ({"limit": "101"}, "limit"), ({"limit": "x"}, "limit"), ({"cursor": "-1"}, "cursor")],
)
def test_bad_list_parameters_are_refused(pan123_api, pan123_sim, query, field):
    status, _, answer = invoke(pan123_api, load_event("pan123_list.json", query=query))

    assert (status, answer["error"]["code"]) == (422, "invalid_request")
    assert [detail["field"] for detail in answer["error"]["details"]] == [field]
    assert pan123_sim.requests == []


def test_list_rate_limit_is_429_with_retry_after(pan123_api, pan123_sim):
    pan123_sim.clock.freeze()
    answers = [invoke(pan123_api, load_event("pan123_list.json")) for _ in range(11)]

    assert [status for status, _, _ in answers] == [200] * 10 + [429]
    _, headers, answer = answers[-1]
    assert answer["error"]["code"] == "provider_rate_limited"
    assert headers["Retry-After"] == "1"


def test_traffic_update_changes_the_settings(pan123_api, pan123_sim):
    share_id = create(pan123_api, DOCS_EXAMPLE)[2]["share_id"]
    body = {"shareIdList": [int(share_id)], "trafficSwitch": 4, "trafficLimitSwitch": 2, "trafficLimit": 1024}

    status, _, answer = invoke(pan123_api, load_event("pan123_update_traffic.json", body=body))

    assert (status, answer) == (200, {"updated": [share_id]})
    call = provider_calls(pan123_sim, "/api/v1/share/list/info")[0]
    assert (call.method, call.body) == ("PUT", body)
    stored = pan123_sim.shares[int(share_id)]
    assert (stored["trafficSwitch"], stored["trafficLimitSwitch"], stored["trafficLimit"]) == (4, 2, 1024)


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"share_ids": [1]}, {"body"}),
        ({"share_ids": [], "traffic_switch": 1}, {"share_ids"}),
        ({"share_ids": list(range(1, 102)), "traffic_switch": 1}, {"share_ids"}),
        ({"share_ids": [1], "traffic_switch": 9, "traffic_limit": -5}, {"traffic_switch", "traffic_limit"}),
    ],
)
def test_bad_traffic_updates_are_refused(pan123_api, pan123_sim, body, fields):
    status, _, answer = invoke(pan123_api, load_event("pan123_update_traffic.json", body=body))

    assert (status, answer["error"]["code"]) == (422, "invalid_request")
    assert {detail["field"] for detail in answer["error"]["details"]} == fields
    assert pan123_sim.requests == []


def test_the_sample_events_all_succeed(pan123_api, pan123_sim):
    share_id = invoke(pan123_api, load_event("pan123_create.json"))[2]["share_id"]
    body = json.loads(load_event("pan123_update_traffic.json")["body"]) | {"share_ids": [int(share_id)]}

    assert invoke(pan123_api, load_event("pan123_list.json"))[0] == 200
    assert invoke(pan123_api, load_event("pan123_update_traffic.json", body=body))[0] == 200


def test_an_unknown_route_answers_in_the_error_shape(pan123_api, pan123_sim):
    event = load_event("pan123_list.json")
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/v1/shares/nowhere"

    status, _, answer = invoke(pan123_api, event)

    assert (status, answer["error"]["code"]) == (404, "not_found")


@pytest.mark.parametrize(
    "content_type",
    ["multipart/form-data", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded", "text/plain"],
)
def test_a_body_that_is_not_json_by_its_content_type_is_malformed(pan123_api, pan123_sim, content_type):
    event = load_event("pan123_create.json", body="shareName=a&shareExpire=1&fileIDList=1")
    event["headers"]["content-type"] = content_type

    status, _, answer = invoke(pan123_api, event)

    assert (status, answer["error"]["code"]) == (400, "malformed_json")
    assert pan123_sim.requests == []


@pytest.mark.parametrize(
    ("body", "base64_encoded"),
    [(b"\xff", True), ('{"shareName": "\xff"}'.encode("latin-1"), True), (b"not base64!", True)],
)
def test_a_body_that_is_not_utf8_is_malformed(pan123_api, pan123_sim, body, base64_encoded):
    event = load_event("pan123_create.json")
    event["body"] = base64.b64encode(body).decode() if body != b"not base64!" else body.decode()
    event["isBase64Encoded"] = base64_encoded

    status, _, answer = invoke(pan123_api, event)

    assert (status, answer["error"]["code"]) == (400, "malformed_json")
    assert pan123_sim.requests == []
