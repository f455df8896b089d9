"""The committed OpenAPI spec is the code's: a route or model changed without `make openapi` fails here."""

from __future__ import annotations

import json
import re

import pytest

from local.openapi import SPEC, merged_spec

OPERATIONS = {
    ("POST", "/v1/shares/123pan"),
    ("GET", "/v1/shares/123pan"),
    ("PATCH", "/v1/shares/123pan"),
    ("POST", "/v1/shares/kdocs"),
    ("GET", "/v1/shares/kdocs/{file_token}"),
    ("DELETE", "/v1/shares/kdocs/{file_token}"),
}
CREATES = {("POST", "/v1/shares/123pan"), ("POST", "/v1/shares/kdocs")}


@pytest.fixture(scope="module")
def spec() -> dict:
    return json.loads(SPEC.read_text())


def operations(spec: dict) -> dict[tuple[str, str], dict]:
    return {
        (method.upper(), path): operation for path, item in spec["paths"].items() for method, operation in item.items()
    }


def test_the_committed_spec_is_what_the_code_generates(pan123_api, kdocs_api):
    assert json.loads(merged_spec()) == json.loads(SPEC.read_text()), "run `make openapi` and commit docs/openapi.json"


def test_the_spec_covers_both_providers_with_the_one_error_shape(spec):
    assert set(operations(spec)) == OPERATIONS
    for name, operation in operations(spec).items():
        errors = {status: answer for status, answer in operation["responses"].items() if int(status) >= 400}
        assert {"400", "422", "500", "502", "504"} <= set(errors), name
        for status, answer in errors.items():
            schema = answer["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (name, status)


def test_both_gateway_authorizations_are_declared(spec):
    schemes = spec["components"]["securitySchemes"]

    assert set(schemes) == {"sigv4", "jwt"}
    assert schemes["sigv4"] | {"description": None} == {
        "type": "apiKey",
        "name": "Authorization",
        "in": "header",
        "x-amazon-apigateway-authtype": "awsSigv4",
        "description": None,
    }
    assert "awscurl" in schemes["sigv4"]["description"]
    assert schemes["jwt"] | {"description": None} == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": None,
    }


def test_every_operation_takes_either_authorization(spec):
    """The top-level `security` applies to every operation that declares none of its own (OpenAPI Object)."""
    for name, operation in operations(spec).items():
        assert operation.get("security", spec["security"]) == [{"sigv4": []}, {"jwt": []}], name


def test_every_component_schema_is_used(spec):
    schemas = spec["components"]["schemas"]
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(spec["paths"])))
    used: set[str] = set()
    while refs - used:
        used |= refs
        refs = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps([schemas[name] for name in used])))

    assert set(schemas) == used


def test_only_the_creates_taking_an_idempotency_key_answer_409(spec):
    answering_409 = {name for name, operation in operations(spec).items() if "409" in operation["responses"]}
    keyed = {
        name
        for name, operation in operations(spec).items()
        if ("header", "idempotency-key") in {(p["in"], p["name"].lower()) for p in operation.get("parameters", [])}
    }

    assert answering_409 == keyed == CREATES
