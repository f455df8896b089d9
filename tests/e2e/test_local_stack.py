"""The local stack as a user runs it: template-driven gateway, handler workers, moto server, simulator."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from local.stack import LocalStack, docs_example

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(sim_lifetime_s=300) as running:
        yield running


def test_docs_example_through_the_gateway_returns_the_normalized_share(stack):
    response = requests.post(
        f"{stack.gateway.url}/v1/shares/123pan", json=docs_example("pan123_create.json"), timeout=30
    )

    assert response.status_code == 201
    share = response.json()
    assert share["url"] == f"https://www.123pan.com/s/{share['share_key']}"
    assert share["file_ids"] == ["14713526", "10861131"]
    call = stack.pan123_sim.requests[-1]
    assert (call.method, call.path, call.headers["Platform"]) == ("POST", "/api/v1/share/create", "open_platform")
    assert call.headers["Authorization"] == f"Bearer {stack.pan123_secret['access_token']}"


def test_list_and_traffic_update_through_the_gateway(stack):
    share = requests.post(f"{stack.gateway.url}/v1/shares/123pan", json=docs_example("pan123_create.json"), timeout=30)
    share_id = share.json()["share_id"]

    listed = requests.get(f"{stack.gateway.url}/v1/shares/123pan", params={"limit": 100}, timeout=30)
    updated = requests.patch(
        f"{stack.gateway.url}/v1/shares/123pan", json={"share_ids": [int(share_id)], "traffic_switch": 3}, timeout=30
    )

    assert share_id in [item["share_id"] for item in listed.json()["shares"]]
    assert (updated.status_code, updated.json()) == (200, {"updated": [share_id]})


def test_errors_through_the_gateway_keep_the_shape(stack):
    response = requests.post(f"{stack.gateway.url}/v1/shares/123pan", data=b"{oops", timeout=30)
    unrouted = requests.get(f"{stack.gateway.url}/v1/nothing", timeout=30)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"
    assert response.json()["request_id"]
    assert unrouted.status_code == 404


def test_the_function_runs_with_the_templates_environment(stack):
    runtime = stack.runtimes["Pan123ApiFunction"]

    assert runtime.env["PAN123_BASE_URL"] == stack.pan123_sim.url
    assert runtime.env["PAN123_SECRET_ID"] == "sharelink-local/pan123"
    assert runtime.env["POWERTOOLS_SERVICE_NAME"] == "pan123-api"
    assert runtime.env["AWS_ENDPOINT_URL"] == stack.aws.endpoint


def test_the_main_job_command_creates_and_prints_a_share():
    done = subprocess.run(
        [sys.executable, "-m", "local", "run", "--once", "--port", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    printed = done.stdout[done.stdout.index("\n{") :]
    assert json.loads(printed)["name"] == "测试分享链接"
