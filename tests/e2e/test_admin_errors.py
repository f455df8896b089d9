"""The first-authorization commands' expected failures: one line on stderr, exit status 1, no traceback, nothing stored.

Run as `make authorize-123pan` runs them, against moto and the simulators, with the environment narrowed to what each
case is about (no region, no credentials, another identity, nothing listening).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_admin import SECRET, free_port, stored

ROOT = Path(__file__).resolve().parents[2]
# Nothing from this machine's AWS configuration: only what a case gives.
NO_AWS_CONFIG = {
    "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def run_admin(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    environment |= NO_AWS_CONFIG | {"PYTHONPATH": f"{ROOT / 'layers' / 'sharelink'}:{ROOT}"} | env
    return subprocess.run(
        [sys.executable, "-m", "admin", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        text=True,
        timeout=60,
        check=False,
    )


def without(env: dict[str, str], *names: str) -> dict[str, str]:
    return {name: value for name, value in env.items() if name not in names}


def one_line_failure(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a failed command printed (and checks it did fail that way)."""
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def authorize_123pan(env: dict[str, str], base_url: str, secret_id: str = SECRET) -> subprocess.CompletedProcess[str]:
    return run_admin(
        env | {"PAN123_CLIENT_SECRET": "sim-secret"},
        "authorize-123pan", "--secret-id", secret_id, "--base-url", base_url, "--client-id", "sim-client",
    )  # fmt: skip


@pytest.fixture
def pan123_secret(fresh_aws) -> dict[str, str]:
    template = {"client_id": "sim-client", "client_secret": "", "access_token": "", "expires_at": ""}
    fresh_aws.client("secretsmanager").create_secret(Name=SECRET, SecretString=json.dumps(template))
    return template


def test_against_the_local_stack_the_region_defaults_to_its_own(pan123_sim, pan123_secret, fresh_aws):
    result = authorize_123pan(without(fresh_aws.env, "AWS_REGION", "AWS_DEFAULT_REGION"), pan123_sim.url)

    assert result.returncode == 0, result.stderr
    assert stored(fresh_aws)["access_token"] in pan123_sim.live_tokens()


def test_no_region_is_one_line(pan123_sim, fresh_aws):
    env = without(fresh_aws.env, "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL")

    line = one_line_failure(authorize_123pan(env, pan123_sim.url))

    assert line.startswith("authorize-123pan: no AWS region: set AWS_REGION")


def test_a_missing_secret_is_one_line(pan123_sim, fresh_aws):
    line = one_line_failure(authorize_123pan(fresh_aws.env, pan123_sim.url, secret_id="sharelink-local/nothing-here"))

    assert line.startswith("authorize-123pan: secret sharelink-local/nothing-here (Secrets Manager, us-east-1) not")


def test_no_credentials_is_one_line(pan123_sim, fresh_aws):
    env = without(fresh_aws.env, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")

    line = one_line_failure(authorize_123pan(env, pan123_sim.url))

    assert line.startswith("authorize-123pan: no AWS credentials")


def test_access_denied_is_one_line(pan123_sim, pan123_secret, fresh_aws):
    # A function's role: allowed its own secrets only.
    env = fresh_aws.role_env("Pan123EventsFunction")

    line = one_line_failure(authorize_123pan(env, pan123_sim.url))

    assert line.startswith(f"authorize-123pan: AWS refused access to secret {SECRET}")
    assert stored(fresh_aws) == pan123_secret


def test_an_emulator_out_of_reach_is_one_line(pan123_sim, fresh_aws):
    nowhere = f"http://127.0.0.1:{free_port()}"

    line = one_line_failure(authorize_123pan(fresh_aws.env | {"AWS_ENDPOINT_URL": nowhere}, pan123_sim.url))

    assert line.startswith(f"authorize-123pan: cannot reach AWS for secret {SECRET}")
    assert "is the local stack running?" in line


def test_a_provider_out_of_reach_is_one_line_and_stores_nothing(pan123_secret, fresh_aws):
    line = one_line_failure(authorize_123pan(fresh_aws.env, f"http://127.0.0.1:{free_port()}"))

    assert line.startswith("authorize-123pan: ")
    assert "could not be reached" in line
    assert line.endswith("nothing stored")
    assert stored(fresh_aws) == pan123_secret


def test_credentials_the_provider_refuses_are_one_line(pan123_sim, pan123_secret, fresh_aws):
    result = run_admin(
        fresh_aws.env | {"PAN123_CLIENT_SECRET": "not-the-secret"},
        "authorize-123pan", "--secret-id", SECRET, "--base-url", pan123_sim.url,
    )  # fmt: skip

    line = one_line_failure(result)

    assert "123pan refused the client credentials" in line
    assert "not-the-secret" not in result.stdout + result.stderr
    assert stored(fresh_aws) == pan123_secret


def test_no_secret_typed_is_one_line(pan123_sim, fresh_aws):
    fresh_aws.client("secretsmanager").create_secret(Name=SECRET, SecretString=json.dumps({"client_id": "sim-client"}))
    result = run_admin(fresh_aws.env, "authorize-123pan", "--secret-id", SECRET, "--base-url", pan123_sim.url)

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "authorize-123pan: no 123pan client secret given: set PAN123_CLIENT_SECRET, or type it when asked"
    )


def test_kdocs_without_a_secret_is_one_line(kdocs_sim, fresh_aws):
    result = run_admin(
        fresh_aws.env | {"KDOCS_APP_KEY": "sim-app-key"},
        "authorize-kdocs", "--secret-id", "sharelink-local/none", "--base-url", kdocs_sim.url, "--code", "x",
    )  # fmt: skip

    assert one_line_failure(result).startswith("authorize-kdocs: secret sharelink-local/none (Secrets Manager")
