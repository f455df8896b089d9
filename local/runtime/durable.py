"""AWS's own local durable execution service (aws-durable-execution-sdk-python-testing's WebRunner) on loopback.

The WebRunner is what AWS ships to run Lambda durable functions locally ("Testing durable functions"): it keeps each
execution's checkpoints and history, serves the durable-execution APIs a durable function's SDK calls (2025-12-01:
CheckpointDurableExecution, GetDurableExecutionState, GetDurableExecution, ...History, ...), and drives an execution
by invoking its function, as Lambda does, at a Lambda-compatible endpoint: here the local Lambda API
(local.runtime.lambda_api), which runs the handler in the function's worker. It replays after a wait ends, and after an
invocation that failed (the worker died, timed out, or the handler raised), with the steps already checkpointed
answered from their checkpoints.

It runs in a process of its own, `python -m local.runtime.durable`, signing its invocations as LAMBDA_SERVICE (the
Lambda API runs an invocation marked as the service's only for that identity). Waits take real time (`skip_time`
False, as in AWS); a test may set `skip_time` to let waits and retry delays end at the next scheduler turn.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from local.aws.iam import Credentials, Identity
from local.template import PSEUDO_PARAMETERS

ROOT = Path(__file__).resolve().parents[2]
REGION = PSEUDO_PARAMETERS["AWS::Region"]
ACCOUNT = PSEUDO_PARAMETERS["AWS::AccountId"]
# Who invokes a durable function's handler for its executions: Lambda itself, not any caller.
LAMBDA_SERVICE = Identity("lambda.amazonaws.com", Credentials.for_principal("lambda.amazonaws.com"), ())
# Lambda's own bound on one invocation (a function's Timeout is at most 900 s); each worker still holds its own.
INVOCATION_TIMEOUT_S = 900
STARTUP_TIMEOUT_S = 30


class DurableRunner:
    """The WebRunner as a child process on 127.0.0.1, invoking functions at `lambda_endpoint`."""

    def __init__(
        self, lambda_endpoint: str, *, skip_time: bool = False, invocation_timeout_s: int = INVOCATION_TIMEOUT_S
    ) -> None:
        self.lambda_endpoint = lambda_endpoint
        self.skip_time = skip_time
        self.invocation_timeout_s = invocation_timeout_s
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> DurableRunner:
        self.port = _free_port()
        command = [sys.executable, "-m", "local.runtime.durable", "--port", str(self.port)]
        command += ["--lambda-endpoint", self.lambda_endpoint, "--invocation-timeout", str(self.invocation_timeout_s)]
        if self.skip_time:
            command.append("--skip-time")
        self.process = subprocess.Popen(  # noqa: S603 - our own module
            command,
            env=_service_env(),
            cwd=ROOT,
            process_group=0,  # a terminal's Ctrl-C goes to the stack, which stops this process in its turn
        )
        _wait_until_listening(self.port, self.process)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def start_execution(self, function_name: str, name: str, payload: str, timeout_s: int, retention_days: int) -> str:
        """Start an execution of `function_name`'s $LATEST named `name` with `payload` as its input: its ARN."""
        body = {
            "AccountId": ACCOUNT,
            "FunctionName": function_name,
            "FunctionQualifier": "$LATEST",
            "ExecutionName": name,
            "ExecutionTimeoutSeconds": timeout_s,
            "ExecutionRetentionPeriodDays": retention_days,
            "Input": payload,
        }
        started = requests.post(f"{self.url}/start-durable-execution", json=body, timeout=30)
        started.raise_for_status()
        return str(started.json()["ExecutionArn"])

    def execution(self, arn: str) -> dict[str, Any]:
        """GetDurableExecution: Status (RUNNING, SUCCEEDED, FAILED, TIMED_OUT, STOPPED), Result or Error, ..."""
        answer = requests.get(f"{self.url}/2025-12-01/durable-executions/{quote(arn, safe='')}", timeout=30)
        answer.raise_for_status()
        return dict(answer.json())

    def __enter__(self) -> DurableRunner:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _service_env() -> dict[str, str]:
    passed = {
        key: os.environ[key] for key in ("PATH", "HOME", "LANG", "PYENV_VERSION", "PYENV_ROOT") if key in os.environ
    }
    return passed | {
        "AWS_ACCESS_KEY_ID": LAMBDA_SERVICE.credentials.access_key_id,
        "AWS_SECRET_ACCESS_KEY": LAMBDA_SERVICE.credentials.secret_access_key,
        "AWS_DEFAULT_REGION": REGION,
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"the durable execution service did not listen on port {port}")


def main() -> None:
    # Imported here: the stack's own process never loads the testing package, only this child does.
    from aws_durable_execution_sdk_python_testing.runner import WebRunner, WebRunnerConfig
    from aws_durable_execution_sdk_python_testing.web.server import WebServiceConfig

    parser = argparse.ArgumentParser(prog="python -m local.runtime.durable", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--lambda-endpoint", required=True)
    parser.add_argument("--invocation-timeout", type=int, default=INVOCATION_TIMEOUT_S)
    parser.add_argument("--skip-time", action="store_true")
    args = parser.parse_args()
    config = WebRunnerConfig(
        web_service=WebServiceConfig(host="127.0.0.1", port=args.port, log_level=logging.WARNING),
        lambda_endpoint=args.lambda_endpoint,
        local_runner_region=REGION,
        invocation_timeout_seconds=args.invocation_timeout,
        skip_time=args.skip_time,
    )
    with WebRunner(config) as runner, contextlib.suppress(KeyboardInterrupt):
        runner.serve_forever()


if __name__ == "__main__":
    main()
