"""What Lambda's CreateFunction refuses of a function's environment variables, refused by the local runtime too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local.runtime.functions import ENVIRONMENT_LIMIT_BYTES, FunctionConfigurationRefused, FunctionRuntime
from local.template import FunctionSpec

HANDLERS = Path(__file__).resolve().parents[1] / "handlers"


def runtime_with(environment: dict[str, str]) -> FunctionRuntime:
    spec = FunctionSpec("Probe", "probe", HANDLERS, "probe", "lambda_handler", environment)
    return FunctionRuntime(spec, {})


def filling(limit_bytes: int) -> dict[str, str]:
    """One variable whose JSON, as Lambda measures it, is `limit_bytes` long."""
    overhead = len(json.dumps({"PADDING": ""}, separators=(",", ":")))
    return {"PADDING": "x" * (limit_bytes - overhead)}


@pytest.mark.parametrize("key", ["AWS_REGION", "AWS_ACCESS_KEY_ID", "_HANDLER", "LAMBDA_TASK_ROOT"])
def test_a_reserved_key_is_refused(key):
    with pytest.raises(FunctionConfigurationRefused, match=f"Reserved keys used in this request: {key}$"):
        runtime_with({"TABLE_NAME": "t", key: "x"})


def test_variables_up_to_4_kb_are_taken_and_past_them_refused():
    runtime_with(filling(ENVIRONMENT_LIMIT_BYTES))

    with pytest.raises(FunctionConfigurationRefused, match="exceeded the 4KB limit"):
        runtime_with(filling(ENVIRONMENT_LIMIT_BYTES + 1))
