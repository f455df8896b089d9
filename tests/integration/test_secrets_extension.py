"""The stand-in of the AWS Parameters and Secrets Lambda Extension, over real HTTP, reading the emulator as a role."""

from __future__ import annotations

import json
import socket
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from botocore.exceptions import ClientError

from local.aws.emulator import LocalAws
from local.aws.iam import ADMIN, POLICY_VERSION, Credentials, Identity
from local.aws.secrets_extension import AUTH_HEADER, SecretsExtension
from local.runtime.functions import FunctionRuntime
from local.template import FunctionSpec
from tests.conftest import FUNCTIONS, KDOCS_SECRET, PAN123_SECRET, SECRETS_EXTENSIONS

ROLE = "Pan123ApiFunction"
FIRST, SECOND = {"access_token": "first"}, {"access_token": "second"}
# A role allowed GetSecretValue on every secret: what is refused then is refused by Secrets Manager, not IAM.
READER_PRINCIPAL = "arn:aws:sts::123456789012:assumed-role/reader/reader"
READER = Identity(
    READER_PRINCIPAL,
    Credentials.for_principal(READER_PRINCIPAL),
    ({"Version": POLICY_VERSION, "Statement": [{"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}]},),
)


class Clock:
    """The stand-in's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def secret(fresh_aws: LocalAws) -> str:
    """The 123pan secret, holding FIRST; answers its ARN."""
    created = fresh_aws.client("secretsmanager").create_secret(Name=PAN123_SECRET, SecretString=json.dumps(FIRST))
    return str(created["ARN"])


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def extension(fresh_aws: LocalAws, clock: Clock) -> Iterator[Callable[..., SecretsExtension]]:
    """Start a stand-in acting as a function's role, with extra environment; all stopped after the test."""
    started: list[SecretsExtension] = []

    def start(env: dict[str, str] | None = None, *, role: str = ROLE) -> SecretsExtension:
        function_env = fresh_aws.role_env(role) | (env or {})
        started.append(SecretsExtension(function_env, clock).start())
        return started[-1]

    yield start
    for running in started:
        running.stop()


def get(extension: SecretsExtension, token: str | None = None, **query: str) -> requests.Response:
    headers = {AUTH_HEADER: token if token is not None else extension.session_token}
    return requests.get(f"{extension.url}/secretsmanager/get", params=query, headers=headers, timeout=5)


def secret_string(extension: SecretsExtension, secret_id: str = PAN123_SECRET) -> dict:
    answer = get(extension, secretId=secret_id)
    assert answer.status_code == 200, answer.text
    return json.loads(answer.json()["SecretString"])


def put(aws: LocalAws, value: dict) -> str:
    """A new current value; answers its version."""
    stored = aws.client("secretsmanager").put_secret_value(SecretId=PAN123_SECRET, SecretString=json.dumps(value))
    return str(stored["VersionId"])


def test_answers_get_secret_values_json_as_the_function_reads_it(extension, secret, fresh_aws):
    expected = fresh_aws.client("secretsmanager").get_secret_value(SecretId=PAN123_SECRET)

    by_name, by_arn = (get(extension(), secretId=secret_id) for secret_id in (PAN123_SECRET, secret))

    assert by_name.status_code == by_arn.status_code == 200
    assert by_name.headers["Content-Type"] == "application/json"
    answer = by_name.json()
    assert set(answer) == {"ARN", "Name", "VersionId", "SecretString", "VersionStages", "CreatedDate"}
    assert (answer["ARN"], answer["Name"], answer["VersionId"]) == (secret, PAN123_SECRET, expected["VersionId"])
    assert (json.loads(answer["SecretString"]), answer["VersionStages"]) == (FIRST, ["AWSCURRENT"])
    assert answer["CreatedDate"] == expected["CreatedDate"].timestamp()
    assert abs(answer["CreatedDate"] - time.time()) < 60
    assert by_arn.json() == answer


def test_reads_a_version_by_id_or_stage(extension, secret, fresh_aws):
    first_version = fresh_aws.client("secretsmanager").get_secret_value(SecretId=PAN123_SECRET)["VersionId"]
    put(fresh_aws, SECOND)
    running = extension()

    by_stage = get(running, secretId=PAN123_SECRET, versionStage="AWSPREVIOUS").json()
    by_id = get(running, secretId=PAN123_SECRET, versionId=first_version).json()

    assert json.loads(by_stage["SecretString"]) == json.loads(by_id["SecretString"]) == FIRST
    assert by_id["VersionId"] == first_version
    assert secret_string(running) == SECOND


@pytest.mark.parametrize("token", ["", "not-the-token", "other-role"])
def test_a_missing_or_wrong_session_token_is_refused(extension, secret, fresh_aws, token):
    if token == "other-role":
        token = str(fresh_aws.roles["KdocsApiFunction"].credentials.session_token)
    running = extension()

    refused = get(running, token, secretId=PAN123_SECRET)
    unsent = requests.get(f"{running.url}/secretsmanager/get", params={"secretId": PAN123_SECRET}, timeout=5)

    assert refused.status_code == unsent.status_code == 401
    assert "first" not in refused.text + unsent.text


def test_a_secret_changed_in_secrets_manager_is_served_stale_until_the_ttl_has_passed(
    extension, secret, fresh_aws, clock
):
    running = extension({"SECRETS_MANAGER_TTL": "10"})
    assert secret_string(running) == FIRST

    put(fresh_aws, SECOND)
    clock.now += 9.9
    assert secret_string(running) == FIRST
    clock.now += 0.1
    assert secret_string(running) == SECOND


def test_the_ttl_is_300_seconds_by_default_and_at_most(extension, secret, fresh_aws, clock):
    by_default, over_the_limit = extension(), extension({"SECRETS_MANAGER_TTL": "3600"})
    assert secret_string(by_default) == secret_string(over_the_limit) == FIRST

    put(fresh_aws, SECOND)
    clock.now += 299
    assert secret_string(by_default) == secret_string(over_the_limit) == FIRST
    clock.now += 1
    assert secret_string(by_default) == secret_string(over_the_limit) == SECOND


@pytest.mark.parametrize(
    "settings",
    [
        {"SECRETS_MANAGER_TTL": "0"},
        {"PARAMETERS_SECRETS_EXTENSION_CACHE_ENABLED": "false"},
        {"PARAMETERS_SECRETS_EXTENSION_CACHE_SIZE": "0"},
    ],
)
def test_without_a_cache_every_read_reaches_secrets_manager(extension, secret, fresh_aws, settings):
    running = extension(settings)
    assert secret_string(running) == FIRST

    put(fresh_aws, SECOND)

    assert secret_string(running) == SECOND


def test_the_cache_keeps_the_most_recently_used_answers_up_to_its_size(extension, secret, fresh_aws):
    running = extension({"PARAMETERS_SECRETS_EXTENSION_CACHE_SIZE": "1"})
    assert secret_string(running) == FIRST
    put(fresh_aws, SECOND)

    current = get(running, secretId=PAN123_SECRET, versionStage="AWSCURRENT").json()

    assert json.loads(current["SecretString"]) == SECOND
    assert secret_string(running) == SECOND


def test_a_role_without_get_secret_value_on_the_secret_gets_secrets_managers_refusal(extension, secret, fresh_aws):
    fresh_aws.client("secretsmanager").create_secret(Name=KDOCS_SECRET, SecretString=json.dumps(FIRST))

    refused = get(extension(), secretId=KDOCS_SECRET)

    assert refused.status_code == 400
    assert refused.json()["__type"] == "AccessDeniedException"
    assert fresh_aws.roles[ROLE].principal in refused.json()["message"]
    assert "first" not in refused.text


def test_secrets_managers_errors_pass_through_with_their_status(extension, fresh_aws):
    fresh_aws.register([READER])
    running = extension(fresh_aws.env_as(READER))

    missing = get(running, secretId="no/such/secret")

    assert missing.status_code == 400
    assert missing.json()["__type"] == "ResourceNotFoundException"


def test_refusals_are_not_cached(extension, fresh_aws):
    fresh_aws.register([READER])
    running = extension(fresh_aws.env_as(READER))
    assert get(running, secretId=PAN123_SECRET).status_code == 400

    fresh_aws.client("secretsmanager").create_secret(Name=PAN123_SECRET, SecretString=json.dumps(FIRST))

    assert secret_string(running) == FIRST


@pytest.mark.parametrize("path", ["/", "/systemsmanager/parameters/get?name=x", "/secretsmanager/get/more"])
def test_any_other_path_is_not_found(extension, path):
    running = extension()

    answer = requests.get(running.url + path, headers={AUTH_HEADER: running.session_token}, timeout=5)

    assert answer.status_code == 404


def test_a_request_without_secret_id_is_refused(extension):
    assert get(extension()).status_code == 400


def test_it_listens_on_loopback_only(extension):
    running = extension()
    assert running.server is not None
    assert running.server.server_address[0] == "127.0.0.1"
    outward = _outward_address()
    if outward is None:
        pytest.skip("this machine has no address but loopback")
    with socket.socket() as probe:
        assert probe.connect_ex((outward, running.port)) != 0


def _outward_address() -> str | None:
    """This machine's address on the network it would reach others by (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") else address


# ---------- session tokens ----------
def test_a_roles_keys_are_valid_with_their_session_token_only(fresh_aws, secret):
    role = fresh_aws.roles[ROLE]
    other_roles = fresh_aws.roles["KdocsApiFunction"].credentials.session_token

    assert fresh_aws.role_env(ROLE)["AWS_SESSION_TOKEN"] == role.credentials.session_token
    assert fresh_aws.client("secretsmanager", role).get_secret_value(SecretId=PAN123_SECRET)["Name"] == PAN123_SECRET
    for token in (None, "not-the-token", other_roles):
        keys = Credentials(role.credentials.access_key_id, role.credentials.secret_access_key, token)
        with_keys = Identity(role.principal, keys, role.policies)
        with pytest.raises(ClientError) as refused:
            fresh_aws.client("secretsmanager", with_keys).get_secret_value(SecretId=PAN123_SECRET)
        with pytest.raises(ClientError) as refused_by_s3:
            fresh_aws.client("s3", with_keys).list_buckets()
        assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException", token
        assert refused_by_s3.value.response["Error"]["Code"] == "InvalidToken", token


def test_long_term_keys_take_no_session_token(fresh_aws):
    assert "AWS_SESSION_TOKEN" not in fresh_aws.env
    with_token = Identity(ADMIN.principal, Credentials("testing", "testing", "a-token"), ADMIN.policies)

    with pytest.raises(ClientError) as refused:
        fresh_aws.client("secretsmanager", with_token).list_secrets()

    assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException"


# ---------- where the stand-in runs ----------
PROBE = '''
    """Answers whether the extension's port was set before this module was imported, and what it serves."""
    import json
    import os
    import urllib.error
    import urllib.request

    PORT_AT_IMPORT = os.environ.get("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT")


    def lambda_handler(event, context):
        url = f"http://localhost:{PORT_AT_IMPORT}/secretsmanager/get?secretId={event['secret_id']}"
        token = {"X-Aws-Parameters-Secrets-Token": os.environ["AWS_SESSION_TOKEN"]}
        request = urllib.request.Request(url, headers=token)
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                return {"port": PORT_AT_IMPORT, "secret": json.loads(json.load(answer)["SecretString"])}
        except urllib.error.URLError as error:
            return {"port": PORT_AT_IMPORT, "error": type(error.reason).__name__}
'''


def probe_runtime(aws: LocalAws, code_dir: Path, *, secrets_extension: bool) -> FunctionRuntime:
    (code_dir / "extension_probe.py").write_text(textwrap.dedent(PROBE))
    spec = FunctionSpec(
        logical_id=ROLE,
        name="extension-probe",
        code_dir=code_dir,
        module="extension_probe",
        handler="lambda_handler",
        environment=FUNCTIONS[ROLE].environment,
        timeout_s=20,
        secrets_extension=secrets_extension,
    )
    return FunctionRuntime(spec, aws.role_env(ROLE))


def test_a_worker_with_the_layer_runs_the_extension_before_the_handlers_import(fresh_aws, secret, tmp_path):
    runtime = probe_runtime(fresh_aws, tmp_path, secrets_extension=True)
    try:
        answer = runtime.invoke({"secret_id": PAN123_SECRET})
    finally:
        runtime.stop()

    assert answer["secret"] == FIRST
    assert answer["port"] != FUNCTIONS[ROLE].environment["PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"]


def test_a_worker_without_the_layer_has_no_extension_to_reach(fresh_aws, secret, tmp_path):
    runtime = probe_runtime(fresh_aws, tmp_path, secrets_extension=False)
    try:
        answer = runtime.invoke({"secret_id": PAN123_SECRET})
    finally:
        runtime.stop()

    assert answer == {"port": "2773", "error": "ConnectionRefusedError"}


def test_in_process_handlers_with_the_layer_read_through_a_stand_in_acting_as_their_role(
    aws, pan123_api, pan123_events, kdocs_api, kdocs_events, tokens_function
):
    assert set(SECRETS_EXTENSIONS) == {
        "Pan123ApiFunction",
        "Pan123EventsFunction",
        "KdocsApiFunction",
        "KdocsEventsFunction",
    }
    for function_id, running in SECRETS_EXTENSIONS.items():
        assert running.session_token == aws.roles[function_id].credentials.session_token, function_id
        assert running.ttl_s == 300, function_id
