"""Schemathesis against the committed OpenAPI document, through the local stack's gateway.

Every operation of docs/openapi.json gets at least MIN_REQUESTS generated requests (positive and negative data,
plus schemathesis's deterministic coverage cases). Whatever is sent:

- no answer is a 5xx;
- every 4xx is the one error shape (`#/components/schemas/ErrorBody`, nothing more, nothing less);
- every 2xx body conforms to the document's response schema for that status, and every status is documented.

Every request is SigV4-signed as the local admin, as the gateway enforces the template's IAM authorization (a
generated Authorization header is replaced by the signature). The simulators are real HTTP servers with their real
limits: a generated 123pan list or traffic update may be rate limited (429, an error like any other), and a generated
body that happens to be valid creates a share.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.signing import SigV4

SPEC_PATH = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
SPEC = json.loads(SPEC_PATH.read_text())
OPERATIONS = {
    "POST /v1/shares/123pan",
    "GET /v1/shares/123pan",
    "PATCH /v1/shares/123pan",
    "POST /v1/shares/kdocs",
    "GET /v1/shares/kdocs/{file_token}",
    "DELETE /v1/shares/kdocs/{file_token}",
}
MIN_REQUESTS = 1000
ERROR_KEYS = {"code", "message", "details", "provider", "provider_code"}
# The document's own ErrorBody, with every `$ref` resolvable from the root.
ERROR_BODY = Draft202012Validator({"$ref": "#/components/schemas/ErrorBody", "components": SPEC["components"]})

# Methods the document does not list never reach a function: API Gateway answers them itself (the local gateway
# too, with http.server's own pages), so probing them would test the gateway, not sharelink.
CONFIG = schemathesis.Config.from_dict({"phases": {"coverage": {"unexpected-methods": []}}})
schema = schemathesis.openapi.from_path(SPEC_PATH, config=CONFIG)
# The document gives types, not the value sets the models check (expire_days one of 0/1/7/30, ...), nor which
# files exist: drawn from it alone, nearly every request is refused before any provider call. So every generated
# body and path may also be sent "in range" (same shape, values moved into the accepted sets, known files), and
# hypothesis picks either; negative cases stay negative in the other branch.
KDOCS_FILES = ("777", "doc-1", "doc-2", "not-mine", "no-such-file")
FIRST_SHARE_ID = 87187530  # the 123pan simulator's first share id: PATCH then names shares that exist
IN_RANGE: dict[str, dict[str, tuple[object, ...]]] = {
    "POST /v1/shares/123pan": {
        "expire_days": (0, 1, 7, 30),
        "traffic_switch": (1, 2, 3, 4),
        "traffic_limit_switch": (1, 2),
    },
    "PATCH /v1/shares/123pan": {"traffic_switch": (1, 2, 3, 4), "traffic_limit_switch": (1, 2)},
    "POST /v1/shares/kdocs": {
        "file_token": KDOCS_FILES,
        "permission": ("read", "write"),
        "expire_days": (0, 7, 30),
        "status": ("open", "close"),
        "range": ("anyone",),
    },
}


def _in_range(label: str, body: dict) -> dict:
    moved = dict(body)
    for name, allowed in IN_RANGE.get(label, {}).items():
        value = moved.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            moved[name] = allowed[value % len(allowed)]
        elif isinstance(value, str) and isinstance(allowed[0], str):
            moved[name] = allowed[len(value) % len(allowed)]
    for name, base, count in (("file_ids", 1, 1000), ("share_ids", FIRST_SHARE_ID, 5)):
        ids = moved.get(name)
        if isinstance(ids, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            moved[name] = [base + i % count for i in ids]
    return moved


@schema.hook
def flatmap_body(context, body):
    if not isinstance(body, dict):
        return st.just(body)
    return st.sampled_from([body, _in_range(context.operation.label, body)])


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    if not path_parameters or "file_token" not in path_parameters:
        return st.just(path_parameters)
    return st.one_of(st.just(path_parameters), st.sampled_from(KDOCS_FILES).map(lambda token: {"file_token": token}))


REQUESTS: Counter[str] = Counter()
STATUSES: dict[str, Counter[int]] = {}


@pytest.fixture(scope="module")
def base_url(stack) -> str:
    # KDocs' default daily quota (500 calls) would turn every later KDocs call into 429 and leave the rest of the
    # run fuzzing nothing but the rate limiter; 123pan keeps its real per-second limits.
    stack.sims["kdocs"].daily_quota = 10**9
    # Something to read, list and update: 123pan shares FIRST_SHARE_ID.. and links on two KDocs files.
    for _ in range(5):
        body = {"name": "fuzz", "expire_days": 7, "file_ids": [1]}
        assert (
            requests.post(f"{stack.gateway.url}/v1/shares/123pan", json=body, auth=SigV4(), timeout=10).status_code
            == 201
        )
    for file_token in ("777", "doc-1"):
        body = {"file_token": file_token, "permission": "read"}
        assert (
            requests.post(f"{stack.gateway.url}/v1/shares/kdocs", json=body, auth=SigV4(), timeout=10).status_code
            == 200
        )
    return stack.gateway.url


def assert_error_shape(status: int, body: object) -> None:
    assert isinstance(body, dict), f"{status} answered a non-object body: {body!r}"
    errors = sorted(ERROR_BODY.iter_errors(body), key=str)
    assert not errors, f"{status} body is not an ErrorBody: {errors[0].message}\n{body!r}"
    assert set(body) == {"error", "request_id"}, body
    assert set(body["error"]) == ERROR_KEYS, body
    assert all(set(detail) == {"field", "problem"} for detail in body["error"]["details"]), body
    assert "Traceback" not in json.dumps(body, ensure_ascii=False)


def test_the_document_has_exactly_the_six_operations():
    """What the fuzzing below covers; a new route in the document must be added here."""
    found = {operation.ok().label for operation in schema.get_all_operations()}
    assert found == OPERATIONS


@pytest.mark.timeout(240)
@schema.parametrize()
@settings(
    max_examples=MIN_REQUESTS,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
)
def test_any_request_gets_a_documented_answer(case, base_url):
    response = case.call(base_url=base_url, auth=SigV4(), timeout=10)
    label = case.operation.label
    REQUESTS[label] += 1
    STATUSES.setdefault(label, Counter())[response.status_code] += 1

    assert response.status_code < 500, f"{response.status_code}: {response.text}"
    if response.status_code >= 400:
        assert_error_shape(response.status_code, response.json())
    case.validate_response(
        response,
        checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
    )


def test_every_operation_got_enough_requests():
    """Runs after the fuzzing above (file order): hypothesis may stop early when it runs out of distinct cases."""
    if not REQUESTS:
        pytest.skip("counts the fuzzing test's requests: run the whole file")
    print({label: dict(statuses) for label, statuses in STATUSES.items()})
    assert {label: REQUESTS[label] >= MIN_REQUESTS for label in OPERATIONS} == dict.fromkeys(OPERATIONS, True), REQUESTS
