"""The local stack as a user runs it: template-driven gateway, handler workers, moto server, simulator.

The gateway enforces the template's authorization (IAM): every request here is SigV4-signed as the local admin.
"""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from local.runtime.event_sources import EventSourceMappingRefused
from local.stack import LocalStack, docs_example
from tests.signing import SigV4, sigv4_headers

ROOT = Path(__file__).resolve().parents[2]
SIGNED = SigV4()


def test_docs_example_through_the_gateway_returns_the_normalized_share(stack):
    response = requests.post(
        f"{stack.gateway.url}/v1/shares/123pan", json=docs_example("pan123_create.json"), auth=SIGNED, timeout=30
    )

    assert response.status_code == 201
    share = response.json()
    assert share["url"] == f"https://www.123pan.com/s/{share['share_key']}"
    assert share["file_ids"] == ["14713526", "10861131"]
    call = stack.sims["pan123"].requests[-1]
    assert (call.method, call.path, call.headers["Platform"]) == ("POST", "/api/v1/share/create", "open_platform")
    assert call.headers["Authorization"] == f"Bearer {stack.secrets['pan123']['access_token']}"


def test_list_and_traffic_update_through_the_gateway(stack):
    url = f"{stack.gateway.url}/v1/shares/123pan"
    share = requests.post(url, json=docs_example("pan123_create.json"), auth=SIGNED, timeout=30)
    share_id = share.json()["share_id"]

    listed = requests.get(url, params={"limit": 100}, auth=SIGNED, timeout=30)
    updated = requests.patch(url, json={"share_ids": [int(share_id)], "traffic_switch": 3}, auth=SIGNED, timeout=30)

    assert share_id in [item["share_id"] for item in listed.json()["shares"]]
    assert (updated.status_code, updated.json()) == (200, {"updated": [share_id]})


def test_errors_through_the_gateway_keep_the_shape(stack):
    response = requests.post(f"{stack.gateway.url}/v1/shares/123pan", data=b"{oops", auth=SIGNED, timeout=30)
    unrouted = requests.get(f"{stack.gateway.url}/v1/nothing", auth=SIGNED, timeout=30)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"
    assert response.json()["request_id"]
    assert unrouted.status_code == 404


def test_the_function_runs_with_the_templates_environment(stack):
    runtime = stack.runtimes["Pan123ApiFunction"]

    assert runtime.env["PAN123_BASE_URL"] == stack.sims["pan123"].url
    assert runtime.env["PAN123_SECRET_ID"] == stack.template.arn("Pan123Secret")  # a secret's Ref is its ARN
    assert runtime.env["AWS_ACCESS_KEY_ID"] == stack.aws.roles["Pan123ApiFunction"].credentials.access_key_id
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
    blocks = [block[block.index("\n{") :] for block in done.stdout.split("\n\n")[1:4]]
    pan123_share, kdocs_share, result = (json.loads(block) for block in blocks)
    assert pan123_share["name"] == "测试分享链接"
    assert (kdocs_share["provider"], kdocs_share["name"]) == ("kdocs", "demo.docx")
    assert (result["status"], result["request"]["key"]) == ("created", "requests/123pan/demo request.json")


def test_kdocs_create_read_close_through_the_gateway(stack):
    kdocs = stack.sims["kdocs"]
    url = f"{stack.gateway.url}/v1/shares/kdocs"
    created = requests.post(url, json=docs_example("kdocs_create.json"), auth=SIGNED, timeout=30)
    read = requests.get(f"{url}/777", auth=SIGNED, timeout=30)
    closed = requests.delete(f"{url}/777", auth=SIGNED, timeout=30)

    assert (created.status_code, read.status_code, closed.status_code) == (200, 200, 200)
    assert read.json() == created.json()
    assert closed.json()["status"] == "close"
    assert closed.json()["share_id"] == created.json()["share_id"]
    assert kdocs.requests[-1].query == {"access_token": stack.secrets["kdocs"]["access_token"]}


@pytest.mark.parametrize(
    "raw_path",
    [
        "../x",
        "..%2Fx",
        "a/b",
        "a%2Fb",
        "a%3Fb",
        "%252F",
        "%20",
        "a%20b",
        "x" * 500,
        "777%23x",
        "777%26access_token%3Dz",
    ],
)
def test_hostile_file_tokens_in_the_path_never_reach_kdocs(stack, raw_path):
    kdocs = stack.sims["kdocs"]
    calls_before = len(kdocs.requests)
    connection = http.client.HTTPConnection("127.0.0.1", int(stack.gateway.url.rsplit(":", 1)[1]), timeout=30)
    for method in ("GET", "DELETE"):
        target = f"/v1/shares/kdocs/{raw_path}"
        signed = sigv4_headers(method, f"{stack.gateway.url}{target}")
        connection.request(method, target, headers=signed)  # sent as is: no client-side normalizing
        response = connection.getresponse()
        answer = json.loads(response.read())

        if "error" in answer:  # the function's answer
            assert (response.status, answer["error"]["code"]) in {(404, "not_found"), (422, "invalid_request")}
        else:  # no route in the template: API Gateway's own 404
            assert (response.status, answer) == (404, {"message": "Not Found"})
    assert len(kdocs.requests) == calls_before


def test_the_spec_and_the_offline_docs_page_through_the_gateway(stack):
    spec = requests.get(f"{stack.gateway.url}/v1/openapi.json", auth=SIGNED, timeout=30)
    page = requests.get(f"{stack.gateway.url}/v1/docs", auth=SIGNED, timeout=30)

    assert spec.json() == json.loads((ROOT / "docs" / "openapi.json").read_text())
    assert page.headers["Content-Type"].startswith("text/html")
    assert "SwaggerUIBundle" in page.text
    assert not re.search(r"""<(script|link)[^>]+(src|href)=['"]?https?://""", page.text)  # no CDN


def test_a_queue_whose_visibility_is_shorter_than_its_functions_timeout_is_refused():
    refusal = r"Queue visibility timeout: 3 seconds is less than Function timeout: 60 seconds"

    with pytest.raises(EventSourceMappingRefused, match=refusal), LocalStack(queue_visibility_timeout_s=3):
        pass
