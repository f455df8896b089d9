"""The KDocs API handler, invoked with real-shaped events, against moto and the KDocs simulator."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest

from tests.conftest import KDOCS_SECRET, invoke, load_event

DOCS_EXAMPLE = {
    "file_token": "777",
    "range": "anyone",
    "permission": "read",
    "period": 7,
    "reset": False,
    "ext_perm_list": ["comment"],
}
HOSTILE_TOKENS = ["../x", "a/b", "a?b", "%2F", " ", "a b", "\t", "a\nb", "x" * 500, "", "777#x", "a&access_token=z"]


def create(kdocs_api, body):
    return invoke(kdocs_api, load_event("kdocs_create.json", body=body))


def on_file(event_name: str, file_token: str) -> dict:
    """A read or close event for another file token, URL-encoded in the path as a client sends it."""
    event = load_event(event_name)
    path = f"/v1/shares/kdocs/{quote(file_token, safe='')}"
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["pathParameters"] = {"file_token": file_token}
    return event


def stored_secret(aws) -> dict:
    return json.loads(aws.client("secretsmanager").get_secret_value(SecretId=KDOCS_SECRET)["SecretString"])


def test_docs_example_body_creates_the_link(kdocs_api, kdocs_sim):
    before = datetime.now(UTC).replace(microsecond=0)
    status, _, share = invoke(kdocs_api, load_event("kdocs_create.json"))

    link = kdocs_sim.links["777"]
    assert status == 200
    assert share == {
        "provider": "kdocs",
        "share_id": link["sid"],
        "share_key": link["sid"],
        "url": f"https://kdocs.cn/l/{link['sid']}",
        "password": None,
        "expires_at": share["expires_at"],
        "permission": "read",
        "name": "demo.docx",
        "file_ids": ["777"],
        "provider_request_id": None,
        "status": "open",
        "allow_comment": True,
    }
    expires_at = datetime.fromisoformat(share["expires_at"])
    assert before + timedelta(days=7) <= expires_at <= datetime.now(UTC) + timedelta(days=7)


def test_outbound_call_is_exactly_what_file_links_md_says(kdocs_api, kdocs_sim, fresh_aws):
    create(kdocs_api, DOCS_EXAMPLE)

    (call,) = kdocs_sim.requests
    assert (call.method, call.path) == ("POST", "/api/v1/openapi/personal/files/777/links")
    assert call.query == {"access_token": stored_secret(fresh_aws)["access_token"]}
    assert "Authorization" not in call.headers
    assert call.body == {
        "range": "anyone",
        "permission": "read",
        "period": 7,
        "reset": False,
        "ext_perm_list": ["comment"],
    }


def test_snake_case_body_and_defaults(kdocs_api, kdocs_sim):
    status, _, share = create(kdocs_api, {"file_token": "doc-1", "permission": "write", "allow_comment": False})

    assert status == 200
    assert (share["permission"], share["allow_comment"], share["expires_at"]) == ("write", False, None)
    assert kdocs_sim.requests[-1].body == {"range": "anyone", "permission": "write", "ext_perm_list": []}


def test_update_keeps_the_sid_and_reset_issues_a_new_one(kdocs_api, kdocs_sim):
    first = create(kdocs_api, {"file_token": "doc-1", "permission": "read"})[2]
    updated = create(kdocs_api, {"file_token": "doc-1", "permission": "write", "expire_days": 30})[2]
    renewed = create(kdocs_api, {"file_token": "doc-1", "permission": "write", "reset": True})[2]

    assert updated["share_id"] == first["share_id"]
    assert updated["permission"] == "write"
    assert updated["expires_at"] is not None
    assert renewed["share_id"] != first["share_id"]
    assert first["share_id"] in kdocs_sim.retired_sids


def test_read_answers_the_current_link(kdocs_api, kdocs_sim):
    created = invoke(kdocs_api, load_event("kdocs_create.json"))[2]

    status, _, share = invoke(kdocs_api, load_event("kdocs_read.json"))

    assert (status, share) == (200, created)
    call = kdocs_sim.requests[-1]
    assert (call.method, call.path, call.body) == ("GET", "/api/v1/openapi/personal/files/777/links", None)


def test_close_sends_status_close_with_the_current_permission(kdocs_api, kdocs_sim):
    create(kdocs_api, DOCS_EXAMPLE | {"permission": "write"})

    status, _, share = invoke(kdocs_api, load_event("kdocs_close.json"))

    assert (status, share["status"], share["permission"]) == (200, "close", "write")
    close = kdocs_sim.requests[-1]
    assert (close.method, close.body) == ("POST", {"range": "anyone", "permission": "write", "status": "close"})
    assert kdocs_sim.links["777"]["status"] == "close"


@pytest.mark.parametrize("event_name", ["kdocs_read.json", "kdocs_close.json"])
def test_a_file_without_a_link_is_not_found(kdocs_api, kdocs_sim, event_name):
    status, _, answer = invoke(kdocs_api, load_event(event_name))

    assert (status, answer["error"]["code"], answer["error"]["provider_code"]) == (404, "provider_not_found", 30014)


@pytest.mark.parametrize("token", HOSTILE_TOKENS)
def test_a_hostile_file_token_never_reaches_the_provider(kdocs_api, kdocs_sim, token):
    in_path = [invoke(kdocs_api, on_file(name, token)) for name in ("kdocs_read.json", "kdocs_close.json")]
    in_body = create(kdocs_api, {"file_token": token, "permission": "read"})

    # an empty token leaves no path segment at all: no route, 404
    refused = {(404, "not_found")} if token == "" else {(422, "invalid_request")}
    assert {(status, answer["error"]["code"]) for status, _, answer in in_path} == refused
    assert (in_body[0], in_body[2]["error"]["code"]) == (422, "invalid_request")
    assert kdocs_sim.requests == []


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"file_token", "permission"}),
        ({"file_token": "777", "permission": "admin"}, {"permission"}),
        ({"file_token": "777", "permission": "read", "period": 1}, {"period"}),
        ({"file_token": "777", "permission": "read", "expire_days": "7"}, {"expire_days"}),
        ({"file_token": "777", "permission": "read", "status": "shut"}, {"status"}),
        ({"file_token": "777", "permission": "read", "range": "friends"}, {"range"}),
        ({"file_token": "777", "permission": "read", "reset": "yes"}, {"reset"}),
        ({"file_token": "777", "permission": "read", "allow_comment": 1}, {"allow_comment"}),
        ({"file_token": "777", "permission": "read", "ext_perm_list": ["edit"]}, {"body"}),
        ({"file_token": "777", "permission": "read", "sharePwd": "x"}, {"sharePwd"}),
    ],
)
def test_every_bad_field_is_named_and_nothing_reaches_the_provider(kdocs_api, kdocs_sim, body, fields):
    status, _, answer = create(kdocs_api, body)

    assert (status, answer["error"]["code"]) == (422, "invalid_request")
    assert {detail["field"] for detail in answer["error"]["details"]} == fields
    assert kdocs_sim.requests == []


@pytest.mark.parametrize("http_status_errors", [False, True], ids=["http-200-code", "http-4xx-json"])
@pytest.mark.parametrize(
    ("body", "status", "code", "provider_code"),
    [
        ({"file_token": "not-mine", "permission": "read"}, 403, "provider_forbidden", 10003),
        ({"file_token": "no-such-file", "permission": "read"}, 404, "provider_not_found", 30012),
    ],
)
def test_provider_refusals_map_to_the_error_table(
    kdocs_api, kdocs_sim, http_status_errors, body, status, code, provider_code
):
    kdocs_sim.errors_as_http_status = http_status_errors

    got_status, _, answer = create(kdocs_api, body)

    assert (got_status, answer["error"]["code"], answer["error"]["provider_code"]) == (status, code, provider_code)
    assert answer["error"]["provider"] == "kdocs"


@pytest.mark.parametrize("http_status_errors", [False, True], ids=["http-200-code", "http-4xx-json"])
@pytest.mark.parametrize(
    ("fault", "status", "code", "provider_code"),
    [
        ({"kind": "code", "code": 10001, "msg": "invalid argument"}, 422, "provider_rejected", 10001),
        ({"kind": "code", "code": 30002, "msg": "rate limited"}, 429, "provider_rate_limited", 30002),
        ({"kind": "code", "code": 30004, "msg": "internal"}, 502, "provider_error", 30004),
        ({"kind": "code", "code": 40008, "msg": "upgrading"}, 502, "provider_error", 40008),
        ({"kind": "http429"}, 429, "provider_rate_limited", 429),
        ({"kind": "http500"}, 502, "provider_error", None),
        ({"kind": "non_json"}, 502, "provider_error", None),
        ({"kind": "truncated_json"}, 502, "provider_error", None),
        ({"kind": "timeout", "delay": 3}, 504, "provider_timeout", None),
    ],
)
def test_provider_failures_map_to_the_error_table(
    kdocs_api, kdocs_sim, http_status_errors, fault, status, code, provider_code
):
    kdocs_sim.errors_as_http_status = http_status_errors
    options = {key: value for key, value in fault.items() if key != "kind"}
    kdocs_sim.faults.add(fault["kind"], **options)

    got_status, headers, answer = create(kdocs_api, DOCS_EXAMPLE)

    assert (got_status, answer["error"]["code"], answer["error"]["provider_code"]) == (status, code, provider_code)
    assert "Traceback" not in json.dumps(answer)
    if status == 429:
        assert int(headers["Retry-After"]) >= 1
    assert len(kdocs_sim.requests) == 1  # a create-or-update is never resent


def test_daily_quota_is_rate_limited(kdocs_api, kdocs_sim):
    kdocs_sim.clock.freeze()
    kdocs_sim.daily_quota = 3
    statuses = [invoke(kdocs_api, load_event("kdocs_create.json"))[0] for _ in range(4)]

    assert statuses == [200, 200, 200, 429]


def test_a_rotated_token_is_picked_up_by_one_fresh_read(kdocs_api, kdocs_sim, fresh_aws):
    create(kdocs_api, DOCS_EXAMPLE)  # caches the current token
    kdocs_sim.expire_tokens()
    rotated = stored_secret(fresh_aws) | {"access_token": kdocs_sim.issue_token()["access_token"]}
    fresh_aws.client("secretsmanager").put_secret_value(SecretId=KDOCS_SECRET, SecretString=json.dumps(rotated))

    status, _, _ = invoke(kdocs_api, load_event("kdocs_read.json"))

    assert status == 200
    stale, fresh = (call.query["access_token"] for call in kdocs_sim.requests[1:])
    assert stale == kdocs_sim.requests[0].query["access_token"]
    assert fresh == rotated["access_token"]


@pytest.mark.parametrize("http_status_errors", [False, True], ids=["http-200-code", "http-4xx-json"])
def test_a_token_still_rejected_after_the_fresh_read_is_auth_failed(kdocs_api, kdocs_sim, http_status_errors):
    kdocs_sim.errors_as_http_status = http_status_errors
    kdocs_sim.expire_tokens()

    status, _, answer = create(kdocs_api, DOCS_EXAMPLE)

    assert (status, answer["error"]["code"], answer["error"]["provider_code"]) == (502, "provider_auth_failed", 30001)
    assert len(kdocs_sim.requests) == 2
    assert kdocs_sim.links == {}
    assert kdocs_sim.requests[0].query["access_token"] not in json.dumps(answer)
