"""One warm "container" of a function: imports the handler once, then answers events read from stdin.

Protocol: one JSON line in ({"event": ..., "request_id": ..., "deadline_ms": ..., "memory_mb": ...}), one JSON line
out ({"result": ...} or {"error": ...}). The handler's own stdout (its logs) goes to stderr, so it cannot mix with the
protocol. The runtime, not this process, enforces the deadline: it kills a worker still busy when the time is up.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
import uuid
from dataclasses import dataclass, field

# What a context made outside a runtime (a test calling a handler) has left: the template's Globals timeout.
DEFAULT_TIMEOUT_MS = 29_000


def _epoch_ms() -> float:
    return time.time() * 1000


@dataclass
class LambdaContext:
    """The context object of AWS's "Using the Lambda context object to retrieve Python function information":
    get_remaining_time_in_millis() is the time left before the invocation times out, memory_limit_in_mb the memory
    allocated to the function (its MemorySize)."""

    function_name: str
    memory_limit_in_mb: int = 256
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "local"
    # Epoch milliseconds at which Lambda stops the invocation: its start plus the function's Timeout.
    deadline_ms: float = field(default_factory=lambda: _epoch_ms() + DEFAULT_TIMEOUT_MS)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self.deadline_ms - _epoch_ms()))


def main(module_name: str, handler_name: str) -> None:
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    handler = getattr(importlib.import_module(module_name), handler_name)
    function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", module_name)
    for line in sys.stdin:
        message = json.loads(line)
        context = LambdaContext(
            function_name,
            memory_limit_in_mb=message["memory_mb"],
            aws_request_id=message["request_id"],
            deadline_ms=message["deadline_ms"],
        )
        try:
            reply = {"result": handler(message["event"], context)}
        except Exception as exc:  # a handler error is the invocation's result, as in Lambda
            traceback.print_exc()
            reply = {"error": {"errorType": type(exc).__name__, "errorMessage": str(exc)}}
        protocol.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
