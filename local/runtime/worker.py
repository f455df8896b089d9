"""One warm "container" of a function: imports the handler once, then answers events read from stdin.

Protocol: once the handler is imported (INIT), one JSON line out: {"initialized": true}. Then for each JSON line in
({"event": ..., "request_id": ..., "deadline_ms": ..., "memory_mb": ...}), one JSON line out ({"result": ...} or
{"error": ...}). The handler's own stdout (its logs) goes to stderr, so it cannot mix with the protocol. The runtime,
not this process, enforces INIT's limit and the deadline: it kills a worker still busy when the time is up. This
process holds Lambda's read-only file system (local.runtime.filesystem) from before its extension and handler start.

With `--secrets-extension` (the function has the AWS Parameters and Secrets Lambda Extension's layer), a stand-in of
that extension (local.aws.secrets_extension) starts before the handler module is imported, as Lambda starts a layer's
extensions before the runtime's init. Its port is a free one, since workers share a host, written into
PARAMETERS_SECRETS_EXTENSION_HTTP_PORT.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
import uuid
from dataclasses import dataclass, field

from local.runtime.cpu_share import lambda_elapsed_s
from local.runtime.filesystem import refuse_writes_outside_tmp

# What a context made outside a runtime (a test calling a handler) has left: the template's Globals timeout.
DEFAULT_TIMEOUT_MS = 29_000


def _epoch_ms() -> float:
    return time.time() * 1000


@dataclass
class LambdaContext:
    """The context object of AWS's "Using the Lambda context object to retrieve Python function information":
    get_remaining_time_in_millis() is the time left before the invocation times out, memory_limit_in_mb the memory
    allocated to the function (its MemorySize).

    The worker's contexts (`cpu_at_start_s` set) count the time spent as the runtime does: the process's CPU work since
    the invocation began takes as long as on the share of a vCPU the memory size buys. A context a test makes counts
    the wall clock's time (its process's CPU is the test's)."""

    function_name: str
    memory_limit_in_mb: int = 256
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "local"
    # Epoch milliseconds at which Lambda stops the invocation: its start plus the function's Timeout.
    deadline_ms: float = field(default_factory=lambda: _epoch_ms() + DEFAULT_TIMEOUT_MS)
    cpu_at_start_s: float | None = None
    started_ms: float = field(default_factory=_epoch_ms)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        now_ms = _epoch_ms()
        if self.cpu_at_start_s is not None:
            wall_s, cpu_s = (now_ms - self.started_ms) / 1000, time.process_time() - self.cpu_at_start_s
            now_ms = self.started_ms + lambda_elapsed_s(wall_s, cpu_s, self.memory_limit_in_mb) * 1000
        return max(0, int(self.deadline_ms - now_ms))


def main(module_name: str, handler_name: str, *, secrets_extension: bool = False) -> None:
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    refuse_writes_outside_tmp()
    if secrets_extension:
        _start_secrets_extension()
    handler = getattr(importlib.import_module(module_name), handler_name)
    function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", module_name)
    protocol.write(json.dumps({"initialized": True}) + "\n")
    for line in sys.stdin:
        message = json.loads(line)
        context = LambdaContext(
            function_name,
            memory_limit_in_mb=message["memory_mb"],
            aws_request_id=message["request_id"],
            deadline_ms=message["deadline_ms"],
            cpu_at_start_s=time.process_time(),
        )
        try:
            reply = {"result": handler(message["event"], context)}
        except Exception as exc:  # a handler error is the invocation's result, as in Lambda
            traceback.print_exc()
            reply = {"error": {"errorType": type(exc).__name__, "errorMessage": str(exc)}}
        protocol.write(json.dumps(reply) + "\n")


def _start_secrets_extension() -> None:
    from local.aws.secrets_extension import SecretsExtension  # not at the top: it imports boto3, the handler may not

    os.environ["PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"] = str(SecretsExtension(os.environ).start().port)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m local.runtime.worker")
    parser.add_argument("module")
    parser.add_argument("handler")
    parser.add_argument("--secrets-extension", action="store_true")
    args = parser.parse_args()
    main(args.module, args.handler, secrets_extension=args.secrets_extension)
