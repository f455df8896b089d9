"""A body breaking a rule that raises ValueError: the answer names the rule's text, not pydantic's wording of it."""

from __future__ import annotations

from tests.conftest import invoke, load_event


def test_a_traffic_update_without_a_setting(pan123_api, pan123_sim):
    status, _, answer = invoke(pan123_api, load_event("pan123_update_traffic.json", body={"share_ids": [1]}))

    assert (status, answer["error"]["code"]) == (422, "invalid_request")
    problem = "give at least one of traffic_switch, traffic_limit_switch, traffic_limit"
    assert answer["error"]["message"] == f"body: {problem}"
    assert answer["error"]["details"] == [{"field": "body", "problem": problem}]
    assert pan123_sim.requests == []


def test_a_kdocs_link_with_another_extra_permission(kdocs_api, kdocs_sim):
    body = {"file_token": "777", "permission": "read", "ext_perm_list": ["edit"]}
    status, _, answer = invoke(kdocs_api, load_event("kdocs_create.json", body=body))

    assert (status, answer["error"]["code"]) == (422, "invalid_request")
    assert answer["error"]["details"] == [{"field": "body", "problem": 'ext_perm_list may only hold "comment"'}]
    assert kdocs_sim.requests == []
