"""What Lambda holds a function to by its configuration: CreateFunction's checks of its environment variables, and the
CPU its memory size buys; the local runtime holds both."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local.runtime.cpu_share import lambda_elapsed_s
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


@pytest.mark.parametrize(
    ("wall_s", "cpu_s", "memory_mb", "on_lambda_s"),
    [
        (1.0, 1.0, 1769, 1.0),  # one vCPU: as on one core here
        (1.0, 1.0, 512, 1769 / 512),  # CPU-bound, 0.29 vCPU
        (2.0, 0.5, 512, 2.0 + 0.5 * (1769 / 512 - 1)),  # only the CPU part is slower
        (1.0, 0.0, 128, 1.0),  # waiting takes as long anywhere
        (1.0, 2.0, 3538, 1.0),  # two threads busy, two vCPUs
        (1.0, 2.0, 1769, 2.0),  # two threads busy, one vCPU
    ],
)
def test_an_invocations_time_on_lambda_counts_its_cpu_work_at_the_memory_sizes_share(
    wall_s, cpu_s, memory_mb, on_lambda_s
):
    assert lambda_elapsed_s(wall_s, cpu_s, memory_mb) == pytest.approx(on_lambda_s)
