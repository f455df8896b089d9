"""The 123pan API function in a process of its own, set up as Lambda sets it up (its role's credentials with a session
token, the secrets extension beside it, active tracing with a trace header per invocation): what it loads, what it
reads, what X-Ray receives."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KDOCS_SECRET, PAN123_SECRET, acting_as, load_event

ROOT = Path(__file__).resolve().parents[2]
# Runs in the function's process: the handler, then one line of what it answered and what it loaded.
PROBE = """
import gc, json, os, secrets, sys
from local.runtime.worker import LambdaContext
import pan123_api

answers, sdk_loaded = [], []
for event in json.load(sys.stdin):
    os.environ["_X_AMZN_TRACE_ID"] = f"Root=1-5759e988-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=1"
    answers.append(pan123_api.lambda_handler(event, LambdaContext("Pan123ApiFunction")))
    sdk_loaded.append("boto3" in sys.modules or "botocore.session" in sys.modules)
sessions = 0
if "botocore.session" in sys.modules:
    import botocore.session
    sessions = sum(isinstance(thing, botocore.session.Session) for thing in gc.get_objects())
print(json.dumps({"answers": answers, "sdk_loaded": sdk_loaded, "botocore_sessions": sessions}))
"""


def run_function(aws, pan123_sim, events: list[dict[str, Any]], **env: str) -> dict[str, Any]:
    with acting_as(aws, "Pan123ApiFunction"):
        function_env = dict(os.environ)
    function_env |= {
        "PAN123_BASE_URL": pan123_sim.url,
        "PAN123_SECRET_ID": PAN123_SECRET,
        "LAMBDA_TASK_ROOT": str(ROOT / "functions" / "pan123"),
        "AWS_LAMBDA_FUNCTION_NAME": "Pan123ApiFunction",
        "PYTHONPATH": os.pathsep.join(str(ROOT / path) for path in ("layers/sharelink", "functions/pan123", ".")),
    } | env
    done = subprocess.run(
        [sys.executable, "-c", PROBE], input=json.dumps(events), env=function_env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def create(**headers: str) -> dict[str, Any]:
    event = load_event("pan123_create.json")
    event["headers"] |= headers
    return event


def test_a_create_without_idempotency_key_loads_no_aws_sdk(aws, pan123_sim):
    """The secret comes through the extension; only a keyed create loads boto3 (for the idempotency table), and
    then a single botocore Session serves every client."""
    ran = run_function(aws, pan123_sim, [create(), create(), create(**{"idempotency-key": "k-1"})])

    assert [answer["statusCode"] for answer in ran["answers"]] == [201, 201, 201]
    assert ran["sdk_loaded"] == [False, False, True]
    assert ran["botocore_sessions"] == 1
    assert len(pan123_sim.shares) == 3


def test_x_ray_receives_the_provider_call_and_the_provider_no_trace_id(aws, pan123_sim):
    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    daemon.settimeout(5)
    with daemon:
        tracing = {
            "POWERTOOLS_TRACE_DISABLED": "false",
            "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{daemon.getsockname()[1]}",
        }
        ran = run_function(aws, pan123_sim, [create()], **tracing)
        assert ran["answers"][0]["statusCode"] == 201
        subsegments = received_subsegments(daemon)

    provider_calls = [
        entity
        for entity in subsegments
        if entity.get("namespace") == "remote"
        and entity.get("http", {}).get("request", {}).get("url") == f"{pan123_sim.url}/api/v1/share/create"
    ]
    assert len(provider_calls) == 1, [entity.get("name") for entity in subsegments]
    assert provider_calls[0]["http"]["response"]["status"] == 200
    assert provider_calls[0]["http"]["request"]["method"] == "POST"
    sent = [request for request in pan123_sim.requests if request.path == "/api/v1/share/create"]
    assert [name for name in sent[0].headers if name.lower() == "x-amzn-trace-id"] == []


def received_subsegments(daemon: socket.socket) -> list[dict[str, Any]]:
    """Every entity in the datagrams sent so far (each is a JSON header line, then the entity), nested ones too."""
    daemon.setblocking(False)
    entities: list[dict[str, Any]] = []
    while True:
        try:
            datagram = daemon.recv(65536)
        except BlockingIOError:
            return entities
        entities.extend(flattened(json.loads(datagram.decode().split("\n", 1)[1])))


def flattened(entity: dict[str, Any]) -> list[dict[str, Any]]:
    return [entity, *(nested for child in entity.get("subsegments", []) for nested in flattened(child))]


@pytest.mark.parametrize("module", ["pan123_events", "kdocs_events"])
def test_an_events_function_builds_none_of_the_parser_models_it_does_not_use(module):
    """Powertools' batch utility builds its pydantic models of SQS, Kinesis, DynamoDB and Kafka records (~36 ms of
    cold start) when pydantic is loaded before it; the events functions load it first."""
    code = "functions/pan123" if module.startswith("pan123") else "functions/kdocs"
    path = os.pathsep.join(str(ROOT / folder) for folder in ("layers/sharelink", code))
    probe = f"import sys, {module}; print([name for name in sys.modules if '.utilities.parser' in name])"
    secrets = {"PAN123_SECRET_ID": PAN123_SECRET, "KDOCS_SECRET_ID": KDOCS_SECRET}
    env = os.environ | secrets | {"PYTHONPATH": path, "AWS_DEFAULT_REGION": "us-east-1"}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)

    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "[]"
