"""A durable function for the durable runtime tests: a step, a durable wait, a step.

The event is {"run": ID, "wait_s": N (1 by default), "die_once": bool, "step_bytes": N}. Each step's run is
appended, one JSON line {"run", "step", "pid"}, to the file PROBE_LOG names, so a test counts how often each step
really ran. With "die_once", the worker process dies (os._exit) right after the first step, once per run (a file
beside PROBE_LOG remembers it): the invocation fails, and the execution must go on in a replay that answers the
first step from its checkpoint. With "step_bytes", a step before the others returns a string of that many bytes (its
checkpoint's Payload, JSON, two more).
"""

import json
import os
from pathlib import Path

from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration


@durable_execution
def lambda_handler(event, context: DurableContext):
    run = event["run"]
    if "step_bytes" in event:
        context.step(lambda _: "x" * event["step_bytes"], name="large")
    first = context.step(lambda _: _note(run, "first"), name="first")
    if event.get("die_once"):
        _die_once(run)
    context.wait(Duration.from_seconds(event.get("wait_s", 1)), name="pause")
    second = context.step(lambda _: _note(run, "second"), name="second")
    return {"run": run, "first": first, "second": second}


def _note(run, step):
    with open(os.environ["PROBE_LOG"], "a") as log:
        log.write(json.dumps({"run": run, "step": step, "pid": os.getpid()}) + "\n")
    return f"{step} of {run} in {os.getpid()}"


def _die_once(run):
    marker = Path(f"{os.environ['PROBE_LOG']}.{run}.died")
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        os._exit(1)
