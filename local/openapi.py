"""The OpenAPI spec of both providers' routes, merged (Powertools OpenAPIMerge): `python -m local.openapi`."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler.openapi.compat import model_json
from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge
from aws_lambda_powertools.event_handler.openapi.models import APIKey, HTTPBearer, OpenAPI, SecurityScheme

SPEC = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"
API_MODULES = ("pan123_api", "kdocs_api")
# Importing a handler module builds its clients; none of them calls AWS or a provider at import.
IMPORT_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "PAN123_SECRET_ID": "spec/pan123",
    "KDOCS_SECRET_ID": "spec/kdocs",
    "IDEMPOTENCY_TABLE": "spec",
    "POWERTOOLS_TRACE_DISABLED": "true",
}
# API Gateway authorizes every route in the spec (template.yaml): IAM by default, a JWT authorizer when the stack's
# JwtIssuer and JwtAudience are set.
SECURITY_SCHEMES: dict[str, SecurityScheme] = {
    # The field `in` is a Python keyword, and type checkers know it by that name only: given as a mapping.
    "sigv4": APIKey.model_validate(
        {
            "name": "Authorization",
            "in": "header",
            "description": "IAM, the stack's default: requests signed with AWS SigV4 for the service execute-api. "
            "Swagger UI cannot sign a request: call with awscurl or botocore's SigV4Auth (README, "
            '"Calling the deployed API").',
            "openapi_extensions": {"x-amazon-apigateway-authtype": "awsSigv4"},
        }
    ),
    "jwt": HTTPBearer(
        bearerFormat="JWT",
        description="A stack deployed with JwtIssuer and JwtAudience: an access token from that issuer, sent as "
        "`Authorization: Bearer <token>` (paste it here to try the routes).",
    ),
}
EITHER_SCHEME: list[dict[str, list[str]]] = [{name: []} for name in SECURITY_SCHEMES]
SCHEMA_REF = "#/components/schemas/"


def merged_spec() -> str:
    for name, value in IMPORT_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    merge = OpenAPIMerge(
        title="sharelink",
        version="1.0.0",
        description="Create and manage 123pan and KDocs share links. Errors share one shape (see README).",
        security_schemes=SECURITY_SCHEMES,
        security=EITHER_SCHEME,
        on_conflict="error",
    )
    for name in API_MODULES:
        merge.add_schema(importlib.import_module(name).app.get_openapi_schema(title="sharelink", version="1.0.0"))
    spec = merge.get_openapi_schema()
    spec["components"]["schemas"] = referenced_schemas(spec)
    return model_json(OpenAPI(**spec), by_alias=True, exclude_none=True, indent=2) + "\n"


def referenced_schemas(spec: dict[str, Any]) -> dict[str, Any]:
    """The component schemas the operations use, directly or through other schemas. Powertools adds its own
    validation error schemas (HTTPValidationError, ValidationError, ResponseValidationError) to every spec it makes,
    but this API answers its errors with ErrorBody, so nothing refers to them."""
    schemas = spec["components"]["schemas"]
    used: set[str] = set()
    pending = _schema_refs(spec["paths"])
    while pending:
        name = pending.pop()
        if name not in used:
            used.add(name)
            pending |= _schema_refs(schemas[name])
    return {name: schema for name, schema in schemas.items() if name in used}


def _schema_refs(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*(_schema_refs(item) for item in node))
    if not isinstance(node, dict):
        return set()
    ref = node.get("$ref")
    found = {ref.removeprefix(SCHEMA_REF)} if isinstance(ref, str) and ref.startswith(SCHEMA_REF) else set()
    return found.union(*(_schema_refs(value) for value in node.values()))


if __name__ == "__main__":
    SPEC.write_text(merged_spec())
    print(f"wrote {SPEC}")
