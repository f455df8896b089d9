"""The OpenAPI spec of both providers' routes, merged (Powertools OpenAPIMerge): `python -m local.openapi`."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge

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


def merged_spec() -> str:
    for name, value in IMPORT_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    merge = OpenAPIMerge(
        title="sharelink",
        version="1.0.0",
        description="Create and manage 123pan and KDocs share links. Errors share one shape (see README).",
        on_conflict="error",
    )
    for name in API_MODULES:
        merge.add_schema(importlib.import_module(name).app.get_openapi_schema(title="sharelink", version="1.0.0"))
    return merge.get_openapi_json_schema() + "\n"


if __name__ == "__main__":
    SPEC.write_text(merged_spec())
    print(f"wrote {SPEC}")
