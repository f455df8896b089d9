"""Tokens that stay valid by themselves: the refresher on the simulators' movable clocks, and the functions' reads."""

from __future__ import annotations

import json
import os

import pytest

from local.runtime.worker import LambdaContext
from sharelink.aws import session as new_session
from sharelink.providers.kdocs import Kdocs
from sharelink.providers.pan123 import Pan123
from sharelink.secrets import ManagerSecrets
from sharelink.token_refresh import TokenRefresher
from sharelink.tokens import SecretTokens
from sharelink.transport import HttpTransport
from tests.conftest import KDOCS_SECRET, PAN123_SECRET, invoke, load_event

PAN123_BODY = {"shareName": "月报", "shareExpire": 7, "fileIDList": "1"}


def stored(aws, secret_id: str) -> dict:
    return json.loads(aws.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"])


def store(aws, secret_id: str, secret: dict) -> None:
    aws.client("secretsmanager").put_secret_value(SecretId=secret_id, SecretString=json.dumps(secret))


def refresher(aws, pan123_sim, kdocs_sim) -> TokenRefresher:
    """The tokens function's work, on the simulators' clock (both clocks move together in these tests)."""
    pan123 = Pan123(
        HttpTransport(pan123_sim.url, provider="123pan", timeout_s=2),
        SecretTokens(PAN123_SECRET, ManagerSecrets(new_session()), provider="123pan"),
    )
    kdocs = Kdocs(
        HttpTransport(kdocs_sim.url, provider="kdocs", timeout_s=2),
        SecretTokens(KDOCS_SECRET, ManagerSecrets(new_session()), provider="kdocs"),
        clock=kdocs_sim.clock.now,
    )
    return TokenRefresher(
        {PAN123_SECRET: pan123, KDOCS_SECRET: kdocs}, aws.client("secretsmanager"), pan123_sim.clock.now
    )


def advance(seconds: float, *sims) -> None:
    for sim in sims:
        sim.clock.advance(seconds)


@pytest.fixture
def both(pan123_sim, kdocs_sim, fresh_aws):
    return pan123_sim, kdocs_sim, fresh_aws


def test_the_refresher_renews_each_token_shortly_before_it_expires(both):
    pan123_sim, kdocs_sim, aws = both
    tokens = refresher(aws, pan123_sim, kdocs_sim)
    first_kdocs, first_pan123 = stored(aws, KDOCS_SECRET), stored(aws, PAN123_SECRET)

    assert tokens.run() == {"123pan": "fresh", "kdocs": "fresh"}
    advance(21.5 * 3600, pan123_sim, kdocs_sim)
    assert tokens.run() == {"123pan": "fresh", "kdocs": "fresh"}  # 2.5 h left
    advance(3600, pan123_sim, kdocs_sim)
    assert tokens.run() == {"123pan": "fresh", "kdocs": "renewed"}  # 1.5 h left
    renewed = stored(aws, KDOCS_SECRET)
    assert renewed["access_token"] != first_kdocs["access_token"]
    assert renewed["refresh_token"] != first_kdocs["refresh_token"]  # rotated: the new one is kept
    assert renewed["app_key"] == first_kdocs["app_key"]

    advance(26.5 * 24 * 3600, pan123_sim, kdocs_sim)  # 30 days less 2.5 h less 26.5 days: under 3 days left
    assert tokens.run()["123pan"] == "renewed"
    assert stored(aws, PAN123_SECRET)["access_token"] != first_pan123["access_token"]
    assert stored(aws, PAN123_SECRET)["client_secret"] == first_pan123["client_secret"]


def test_a_refresh_token_that_does_not_rotate_is_kept(both):
    pan123_sim, kdocs_sim, aws = both
    kdocs_sim.rotate_refresh_tokens = False
    before = stored(aws, KDOCS_SECRET)
    advance(23 * 3600, pan123_sim, kdocs_sim)

    assert refresher(aws, pan123_sim, kdocs_sim).run()["kdocs"] == "renewed"

    after = stored(aws, KDOCS_SECRET)
    assert after["refresh_token"] == before["refresh_token"]
    assert after["access_token"] != before["access_token"]
    kdocs_sim.rotate_refresh_tokens = True


def test_functions_keep_working_across_a_renewal(both, pan123_api, kdocs_api):
    pan123_sim, kdocs_sim, aws = both
    tokens = refresher(aws, pan123_sim, kdocs_sim)
    statuses = [invoke(kdocs_api, load_event("kdocs_create.json"))[0]]  # caches the first token

    advance(23 * 3600, pan123_sim, kdocs_sim)
    assert tokens.run()["kdocs"] == "renewed"
    statuses.append(invoke(kdocs_api, load_event("kdocs_read.json"))[0])  # the cached token still lives
    advance(2 * 3600, pan123_sim, kdocs_sim)  # the first token has expired now
    statuses.append(invoke(kdocs_api, load_event("kdocs_read.json"))[0])

    assert statuses == [200, 200, 200]
    used = [call.query["access_token"] for call in kdocs_sim.requests if call.path.startswith("/api/v1/openapi")]
    assert used[-1] == stored(aws, KDOCS_SECRET)["access_token"]


def test_a_revoked_token_is_recovered_by_the_fresh_read(both, kdocs_api):
    _, kdocs_sim, aws = both
    invoke(kdocs_api, load_event("kdocs_create.json"))
    kdocs_sim.revoke(stored(aws, KDOCS_SECRET)["access_token"])
    store(aws, KDOCS_SECRET, stored(aws, KDOCS_SECRET) | {"access_token": kdocs_sim.issue_token()["access_token"]})

    status, _, _ = invoke(kdocs_api, load_event("kdocs_read.json"))

    assert status == 200


def test_a_cached_token_past_its_expiry_is_read_again_before_any_call(both, pan123_api):
    pan123_sim, _, aws = both
    secret = stored(aws, PAN123_SECRET)
    store(aws, PAN123_SECRET, secret | {"expires_at": "2020-01-01T00:00:00Z"})
    invoke(pan123_api, load_event("pan123_create.json"))  # caches a token the secret says has expired
    renewed = secret | {"access_token": pan123_sim.issue_token(), "expires_at": "2099-01-01T00:00:00Z"}
    store(aws, PAN123_SECRET, renewed)

    status, _, _ = invoke(pan123_api, load_event("pan123_create.json"))

    creates = [call for call in pan123_sim.requests if call.path == "/api/v1/share/create"]
    assert status == 201
    assert creates[-1].headers["Authorization"] == f"Bearer {renewed['access_token']}"
    assert len(creates) == 2  # no rejected call in between


def test_first_use_mints_one_token_when_the_secret_holds_none(both, pan123_api):
    pan123_sim, _, aws = both
    store(aws, PAN123_SECRET, stored(aws, PAN123_SECRET) | {"access_token": "", "expires_at": ""})
    pan123_api.pan123.tokens.minted = None

    statuses = [invoke(pan123_api, load_event("pan123_create.json"))[0] for _ in range(3)]

    assert statuses == [201, 201, 201]
    assert [call.path for call in pan123_sim.requests].count("/api/v1/access_token") == 1


def test_kdocs_without_a_token_asks_for_authorization(both, kdocs_api):
    _, _, aws = both
    store(aws, KDOCS_SECRET, stored(aws, KDOCS_SECRET) | {"access_token": ""})

    status, _, answer = invoke(kdocs_api, load_event("kdocs_read.json"))

    assert (status, answer["error"]["code"]) == (502, "provider_auth_failed")
    assert "authorize" in answer["error"]["message"]


def test_a_failed_renewal_keeps_the_old_secret_logs_the_code_and_raises_the_metric(
    both, tokens_function, capsys, caplog
):
    _pan123_sim, kdocs_sim, aws = both
    kdocs_before = stored(aws, KDOCS_SECRET) | {"expires_at": "2020-01-01T00:00:00Z"}
    store(aws, KDOCS_SECRET, kdocs_before)
    kdocs_sim.faults.add("code", path="/api/v1/oauth2/refresh_token", code=30001, msg="refresh token revoked")
    pan123_before = stored(aws, PAN123_SECRET) | {"expires_at": "2020-01-01T00:00:00Z", "client_secret": "wrong"}
    store(aws, PAN123_SECRET, pan123_before)

    outcome = tokens_function.lambda_handler({"source": "aws.scheduler"}, LambdaContext("tokens"))

    assert outcome == {"123pan": "failed", "kdocs": "failed"}
    assert stored(aws, KDOCS_SECRET) == kdocs_before
    assert stored(aws, PAN123_SECRET) == pan123_before
    failures = [record for record in caplog.records if record.getMessage().startswith("token renewal failed")]
    assert {(record.provider, record.provider_code) for record in failures} == {("kdocs", 30001), ("123pan", 401)}
    assert all(record.levelname == "ERROR" for record in failures)
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    (emf,) = [line for line in printed if "_aws" in line]
    assert emf["TokenRenewalFailed"] == [1.0, 1.0]
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "sharelink"
    assert emf["service"] == os.environ["POWERTOOLS_SERVICE_NAME"]


def test_123pan_never_has_more_than_3_live_tokens_and_the_stored_one_always_works(both):
    pan123_sim, kdocs_sim, aws = both
    tokens = refresher(aws, pan123_sim, kdocs_sim)
    renewals = 0
    for _ in range(240):  # 120 days, a run every 12 hours
        advance(12 * 3600, pan123_sim, kdocs_sim)
        mints_before = token_calls(pan123_sim)
        renewals += tokens.run()["123pan"] == "renewed"
        assert token_calls(pan123_sim) - mints_before <= 1  # never minted in a loop
        assert len(pan123_sim.live_tokens()) <= 3
        assert stored(aws, PAN123_SECRET)["access_token"] in pan123_sim.live_tokens()
    assert 4 <= renewals <= 5  # about every 27 days


def token_calls(sim) -> int:
    return sum(call.path == "/api/v1/access_token" for call in sim.requests)
