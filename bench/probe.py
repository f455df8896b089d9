"""The function process of `make bench`: one handler in a Lambda-like environment, and nothing of the bench.

The AWS emulator, the simulators and the secrets extension stand-in run in other processes, as AWS and the extension
run beside a function in Lambda, so this process's peak memory (VmHWM) is the function's own.

`python -m bench.probe warm|batch` reads a JSON spec on stdin and writes one JSON line of figures on stdout; the
handler's log lines go to /dev/null (Lambda ships them; a terminal would only slow the loop).
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import requests

from local.runtime.worker import LambdaContext

# X-Ray's default sampling rule, which Lambda applies to an invocation that comes without a trace header (HTTP APIs
# and S3 notifications send none): the first request each second and 5% of the others are sampled. A create under
# load is one of the others; a function called less than once a second has each of its invocations sampled.
SAMPLED_EVERY = 4  # one warm create in four is sampled: enough of each kind for a median


def trace_header(*, sampled: bool = True) -> str:
    """What Lambda sets for each invocation of a function with active tracing."""
    root = f"1-{int(time.time()):08x}-{secrets.token_hex(12)}"
    return f"Root={root};Parent={secrets.token_hex(8)};Sampled={int(sampled)}"


def invoke(handler: Callable[[dict, Any], Any], event: dict[str, Any], *, sampled: bool = True) -> Any:
    os.environ["_X_AMZN_TRACE_ID"] = trace_header(sampled=sampled)
    return handler(event, LambdaContext(os.environ["AWS_LAMBDA_FUNCTION_NAME"]))


def timed(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def cpu_timed(call: Callable[[], Any]) -> tuple[float, float]:
    """Wall time and this process's CPU time (all its threads) of one call."""
    started, cpu = time.perf_counter(), time.process_time()
    call()
    return time.perf_counter() - started, time.process_time() - cpu


def peak_memory_mb() -> float:
    """VmHWM: the peak resident set of this process (ru_maxrss would keep a forking parent's high-water mark)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def warm(spec: dict[str, Any]) -> dict[str, Any]:
    """Each call through the handler paired with a bare POST of the same body to the same simulator; one call in
    four sampled by X-Ray, the others not, each kind with its own median."""
    handler = importlib.import_module(spec["module"]).lambda_handler
    bare = requests.Session()

    def post() -> None:
        bare.post(spec["bare_url"], json=spec["bare_body"], headers=spec["bare_headers"], timeout=5).raise_for_status()

    def handle(sampled: bool) -> None:
        answer = invoke(handler, spec["event"], sampled=sampled)
        if not 200 <= answer["statusCode"] < 300:
            raise RuntimeError(f"the handler answered {answer['statusCode']}: {answer['body'][:300]}")

    handle(True)  # the first call of each pays for connections and lazy loading
    post()
    pairs: dict[bool, list[tuple[tuple[float, float], float]]] = {False: [], True: []}
    for call in range(spec["calls"]):
        sampled = call % SAMPLED_EVERY == SAMPLED_EVERY - 1
        pairs[sampled].append((cpu_timed(functools.partial(handle, sampled)), timed(post)))
    figures = {"unsampled": _warm_figures(pairs[False]), "sampled": _warm_figures(pairs[True])}
    return figures | {"peak_mb": peak_memory_mb()}


def _warm_figures(pairs: list[tuple[tuple[float, float], float]]) -> dict[str, float]:
    return {
        "calls": len(pairs),
        "handler_ms": statistics.median(handled for (handled, _), _ in pairs) * 1000,
        "handler_cpu_ms": statistics.median(cpu for (_, cpu), _ in pairs) * 1000,
        "bare_ms": statistics.median(posted for _, posted in pairs) * 1000,
        "ratio": statistics.median(handled / posted for (handled, _), posted in pairs),
    }


def batch(spec: dict[str, Any]) -> dict[str, Any]:
    """Each batch sampled by X-Ray, as every invocation of a function invoked less than once a second is."""
    handler = importlib.import_module(spec["module"]).lambda_handler

    def handle(event: dict[str, Any]) -> None:
        answer = invoke(handler, event)
        if answer != {"batchItemFailures": []}:
            raise RuntimeError(f"records failed: {answer}")

    timings = [cpu_timed(functools.partial(handle, event)) for event in spec["events"]]
    return {
        "batch_ms": [round(took * 1000, 1) for took, _ in timings],
        "batch_cpu_ms": [round(cpu * 1000, 1) for _, cpu in timings],
        "peak_mb": peak_memory_mb(),
    }


def main(mode: str) -> None:
    spec = json.load(sys.stdin)
    figures = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    with open(os.devnull, "w") as logs:
        os.dup2(logs.fileno(), sys.stdout.fileno())
    figures.write(json.dumps({"warm": warm, "batch": batch}[mode](spec)) + "\n")
    figures.flush()


if __name__ == "__main__":
    main(sys.argv[1])
