"""The first-authorization commands, run as a user runs them, against the simulators and moto."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
SECRET = "sharelink-admin-test"


def command(aws, *args: str, **env: str) -> subprocess.Popen[str]:
    environment = os.environ | aws.env | {"PYTHONPATH": f"{ROOT / 'layers' / 'sharelink'}:{ROOT}"} | env
    return subprocess.Popen(
        [sys.executable, "-m", "admin", *args],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def empty_secret(aws, template: dict) -> None:
    aws.client("secretsmanager").create_secret(Name=SECRET, SecretString=json.dumps(template))


def stored(aws) -> dict:
    return json.loads(aws.client("secretsmanager").get_secret_value(SecretId=SECRET)["SecretString"])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_kdocs_authorization_through_the_one_shot_callback(kdocs_sim, fresh_aws):
    empty_secret(
        fresh_aws, {"app_id": "sim-app", "app_key": "", "access_token": "", "refresh_token": "", "expires_at": ""}
    )
    callback = f"http://127.0.0.1:{free_port()}/callback"
    running = command(
        fresh_aws,
        "authorize-kdocs", "--secret-id", SECRET, "--base-url", kdocs_sim.url,
        "--redirect-uri", callback, "--wait", "60", KDOCS_APP_KEY="sim-app-key",
    )  # fmt: skip
    assert running.stdout.readline().startswith("Open this address")
    consent_url = running.stdout.readline().strip()

    browser = requests.get(consent_url, timeout=30)  # the simulator redirects to the command's callback
    output, errors = running.communicate(timeout=60)

    assert running.returncode == 0, errors
    assert (browser.status_code, browser.text) == (200, "sharelink: authorized, you can close this tab")
    secret = stored(fresh_aws)
    assert (secret["app_id"], secret["app_key"]) == ("sim-app", "sim-app-key")
    assert secret["access_token"] in kdocs_sim.tokens
    assert secret["refresh_token"] in kdocs_sim.refresh_tokens
    assert secret["expires_at"].endswith("Z")
    assert secret["access_token"] not in output + errors
    assert "sim-app-key" not in output + errors


def test_kdocs_authorization_with_a_pasted_code(kdocs_sim, fresh_aws):
    empty_secret(fresh_aws, {})
    code = kdocs_sim.authorize()

    running = command(
        fresh_aws,
        "authorize-kdocs", "--secret-id", SECRET, "--base-url", kdocs_sim.url, "--app-id", "sim-app", "--code", code,
        KDOCS_APP_KEY="sim-app-key",
    )  # fmt: skip
    _, errors = running.communicate(timeout=60)

    assert running.returncode == 0, errors
    assert stored(fresh_aws)["access_token"] in kdocs_sim.tokens


def test_123pan_authorization_stores_the_credentials_and_a_first_token(pan123_sim, fresh_aws):
    empty_secret(fresh_aws, {"client_id": "", "client_secret": "", "access_token": "", "expires_at": ""})

    running = command(
        fresh_aws,
        "authorize-123pan", "--secret-id", SECRET, "--base-url", pan123_sim.url, "--client-id", "sim-client",
        PAN123_CLIENT_SECRET="sim-secret",
    )  # fmt: skip
    output, errors = running.communicate(timeout=60)

    assert running.returncode == 0, errors
    secret = stored(fresh_aws)
    assert (secret["client_id"], secret["client_secret"]) == ("sim-client", "sim-secret")
    assert secret["access_token"] in pan123_sim.live_tokens()
    assert secret["access_token"] not in output + errors
    assert "sim-secret" not in output + errors


def test_wrong_client_credentials_store_nothing(pan123_sim, fresh_aws):
    empty_secret(fresh_aws, {"client_id": "sim-client"})

    running = command(
        fresh_aws, "authorize-123pan", "--secret-id", SECRET, "--base-url", pan123_sim.url, PAN123_CLIENT_SECRET="wrong"
    )
    _, errors = running.communicate(timeout=60)

    assert running.returncode != 0
    assert "refused the client credentials" in errors
    assert "wrong" not in errors.replace("wrong", "", 0) or "Traceback" in errors
    assert stored(fresh_aws) == {"client_id": "sim-client"}
