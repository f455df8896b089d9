"""sharelink.secrets against the extension's stand-in and the emulator: a cached read through the extension, a fresh
read that goes to Secrets Manager itself, and which of the two copies wins until the extension's expires."""

from __future__ import annotations

import json

import pytest

from local.aws.secrets_extension import SecretsExtension
from sharelink.aws import Session
from sharelink.secrets import ExtensionSecrets, ManagerSecrets, SecretUnreadable
from tests.conftest import PAN123_SECRET, acting_as
from tests.integration.test_secrets_extension import Clock

TTL_S = 300


@pytest.fixture
def reading(fresh_aws):
    """A reader acting as the 123pan API function, and its extension, on one clock."""
    fresh_aws.client("secretsmanager").create_secret(Name=PAN123_SECRET, SecretString=json.dumps({"v": 1}))
    clock = Clock()
    with acting_as(fresh_aws, "Pan123ApiFunction"):
        env = fresh_aws.role_env("Pan123ApiFunction") | {"SECRETS_MANAGER_TTL": str(TTL_S)}
        extension = SecretsExtension(env, clock=clock).start()
        reader = ExtensionSecrets(
            extension.port, env["AWS_SESSION_TOKEN"], ManagerSecrets(Session(), TTL_S), TTL_S, clock=clock
        )
    yield reader, clock
    extension.stop()


def put(aws, value: dict) -> None:
    aws.client("secretsmanager").put_secret_value(SecretId=PAN123_SECRET, SecretString=json.dumps(value))


def test_a_fresh_read_bypasses_the_extensions_cache_and_wins_until_it_expires(reading, fresh_aws):
    reader, clock = reading
    assert reader.read(PAN123_SECRET) == {"v": 1}
    put(fresh_aws, {"v": 2})
    assert reader.read(PAN123_SECRET) == {"v": 1}  # the extension's copy, for its TTL

    assert reader.read(PAN123_SECRET, fresh=True) == {"v": 2}
    clock.now += TTL_S - 1
    assert reader.read(PAN123_SECRET) == {"v": 2}  # not the extension's stale copy

    put(fresh_aws, {"v": 3})
    clock.now += 2  # both copies have expired: the extension reads Secrets Manager again
    assert reader.read(PAN123_SECRET) == {"v": 3}


def test_a_refused_read_is_unreadable_with_the_extensions_reason(reading):
    reader, _ = reading
    with pytest.raises(SecretUnreadable, match="400"):
        reader.read("sharelink-test/not-this-functions-secret")


def test_a_wrong_session_token_is_refused_by_the_extension(reading):
    reader, _ = reading
    reader.headers = {"X-Aws-Parameters-Secrets-Token": "another-token"}
    with pytest.raises(SecretUnreadable, match="401"):
        reader.read(PAN123_SECRET)
