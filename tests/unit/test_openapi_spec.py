"""The committed OpenAPI spec is the code's: a route or model changed without `make openapi` fails here."""

from __future__ import annotations

import json

from local.openapi import SPEC, merged_spec


def test_the_committed_spec_is_what_the_code_generates(pan123_api, kdocs_api):
    assert json.loads(merged_spec()) == json.loads(SPEC.read_text()), "run `make openapi` and commit docs/openapi.json"


def test_the_spec_covers_both_providers_with_the_one_error_shape():
    spec = json.loads(SPEC.read_text())
    operations = {(method.upper(), path) for path, item in spec["paths"].items() for method in item}
    assert operations == {
        ("POST", "/v1/shares/123pan"),
        ("GET", "/v1/shares/123pan"),
        ("PATCH", "/v1/shares/123pan"),
        ("POST", "/v1/shares/kdocs"),
        ("GET", "/v1/shares/kdocs/{file_token}"),
        ("DELETE", "/v1/shares/kdocs/{file_token}"),
    }
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            for status in ("400", "422", "502", "504"):
                schema = operation["responses"][status]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)
