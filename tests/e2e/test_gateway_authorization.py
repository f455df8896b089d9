"""The local gateway authorizes as API Gateway does, by the template's routes: real HTTP on 127.0.0.1, no mocks.

- each route's AuthorizationType and JWT authorizer as template.yaml's conditions resolve them;
- the template's default (AWS_IAM): SigV4 signed with botocore's signer (the admin's keys, a function role's keys
  with its session token) or by the real `awscurl` CLI gets the route's answer; unsigned, tampered, signed with an
  unknown key or 10 minutes ago is 403 with API Gateway's message, before any function or provider call;
- `auth="jwt"` (a JWT authorizer and the local issuer): a token it minted gets the route's answer; one signed by
  another key, for another audience or issuer, expired, not yet valid, malformed or missing is 401;
- `auth="open"`: plain requests get the route's answer;
- what the authorization found reaches the function in requestContext.authorizer (payload 2.0), through a gateway
  in front of a test function that answers it (tests/handlers/authorizer_echo.py).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from local.aws.emulator import REGION
from local.aws.iam import ADMIN, Credentials, Identity
from local.runtime.authorization import Authorization
from local.runtime.functions import FunctionRuntime
from local.runtime.gateway import Gateway
from local.runtime.jwt_issuer import JwtIssuer
from local.stack import JWT_AUDIENCE, TEMPLATE, LocalStack, docs_example
from local.template import FunctionSpec, HttpRoute, JwtConfiguration, Template
from tests.conftest import observe_results
from tests.leaks import observe
from tests.signing import SigV4, sigv4_headers

AWSCURL = Path(sys.executable).parent / "awscurl"
HANDLERS = Path(__file__).resolve().parents[1] / "handlers"
FORBIDDEN = {"message": "Forbidden"}
UNAUTHORIZED = {"message": "Unauthorized"}
INVALID_TOKEN = {"message": "The security token included in the request is invalid."}
SIGNATURE_MISMATCH = {
    "message": "The request signature we calculated does not match the signature you provided. Check your AWS "
    "Secret Access Key and signing method. Consult the service documentation for details."
}
EXPIRED = re.compile(r"Signature expired: \d{8}T\d{6}Z is now earlier than \d{8}T\d{6}Z \(\d{8}T\d{6}Z - 5 min\.\)")
INVALID_TOKEN_CHALLENGE = 'Bearer scope="" error="invalid_token" error_description="'


def share_calls(stack: LocalStack) -> int:
    return sum(len(sim.requests) for sim in stack.sims.values())


@pytest.fixture(scope="module")
def jwt_stack() -> Iterator[LocalStack]:
    with LocalStack(sim_lifetime_s=600, auth="jwt") as running:
        running.gateway.observers.append(observe)
        yield running
        observe_results(running.aws)


@pytest.fixture(scope="module")
def open_stack() -> Iterator[LocalStack]:
    with LocalStack(sim_lifetime_s=600, auth="open") as running:
        running.gateway.observers.append(observe)
        yield running


def authorization_by_route(parameters: dict[str, str]) -> dict[str, tuple[str, JwtConfiguration | None]]:
    routes = Template(TEMPLATE, parameters).http_routes()
    return {f"{route.method} {route.path}": (route.authorization, route.jwt) for route in routes}


def test_the_routes_authorization_is_the_templates():
    jwt_parameters = {"JwtIssuer": "https://issuer.example.com", "JwtAudience": "client"}
    jwt_configuration = JwtConfiguration("https://issuer.example.com", ("client",))
    docs = {"GET /v1/openapi.json", "GET /v1/docs"}

    by_default = authorization_by_route({})
    with_jwt = authorization_by_route(jwt_parameters)
    public_docs = authorization_by_route(jwt_parameters | {"PublicDocs": "true"})
    issuer_only = authorization_by_route({"JwtIssuer": "https://issuer.example.com"})

    assert len(by_default) == 8
    assert set(by_default.values()) == set(issuer_only.values()) == {("AWS_IAM", None)}
    assert set(with_jwt.values()) == {("JWT", jwt_configuration)}
    assert {route: public_docs[route] for route in docs} == dict.fromkeys(docs, ("NONE", None))
    assert {public_docs[route] for route in public_docs.keys() - docs} == {("JWT", jwt_configuration)}


# ---------- AWS_IAM, as the template says by default ----------
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/shares/123pan?limit=10"), ("POST", "/v1/shares/kdocs"), ("GET", "/v1/docs")],
)
def test_an_unsigned_request_is_forbidden_before_any_call(stack, method, path):
    calls = share_calls(stack)

    answer = requests.request(method, f"{stack.gateway.url}{path}", json={"file_token": "777"}, timeout=30)

    assert (answer.status_code, answer.json()) == (403, FORBIDDEN)
    assert share_calls(stack) == calls


def test_a_path_no_route_serves_is_not_found_signed_or_not(stack):
    unsigned = requests.get(f"{stack.gateway.url}/v1/nothing", timeout=30)
    signed = requests.get(f"{stack.gateway.url}/v1/nothing", auth=SigV4(), timeout=30)

    assert (
        (unsigned.status_code, unsigned.json())
        == (signed.status_code, signed.json())
        == (404, {"message": "Not Found"})
    )


def test_an_authorization_header_that_is_no_signature_is_refused(stack):
    answer = requests.get(f"{stack.gateway.url}/v1/shares/kdocs/777", headers={"Authorization": "Bearer x"}, timeout=30)

    assert answer.status_code == 403
    assert answer.json()["message"] == (
        "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. "
        "Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either "
        "a 'X-Amz-Date' or a 'Date' header. Authorization=Bearer x"
    )


def test_signed_as_the_admin_a_request_gets_the_routes_answer(stack):
    created = requests.post(
        f"{stack.gateway.url}/v1/shares/kdocs", json=docs_example("kdocs_create.json"), auth=SigV4(), timeout=30
    )
    listed = requests.get(f"{stack.gateway.url}/v1/shares/123pan", params={"limit": 10}, auth=SigV4(), timeout=30)

    assert (created.status_code, created.json()["provider"]) == (200, "kdocs")
    assert (listed.status_code, set(listed.json())) == (200, {"shares", "next_cursor"})


def test_signed_with_a_function_roles_keys_the_session_token_is_needed(stack):
    role = stack.aws.roles["Pan123ApiFunction"].credentials
    without_token = Credentials(role.access_key_id, role.secret_access_key)
    url = f"{stack.gateway.url}/v1/shares/123pan?limit=10"

    with_token = requests.get(url, auth=SigV4(role), timeout=30)
    refused = requests.get(url, auth=SigV4(without_token), timeout=30)

    assert with_token.status_code == 200
    assert (refused.status_code, refused.json()) == (403, INVALID_TOKEN)


@pytest.mark.parametrize(
    ("signed_target", "sent_target", "signed_body", "sent_body"),
    [
        ("/v1/shares/kdocs", "/v1/shares/kdocs", b'{"file_token": "777"}', b'{"file_token": "doc-1"}'),
        ("/v1/shares/kdocs/777", "/v1/shares/kdocs/doc-1", b"", b""),
        ("/v1/shares/123pan?limit=10", "/v1/shares/123pan?limit=100", b"", b""),
    ],
    ids=["body", "path", "query"],
)
def test_a_tampered_request_does_not_match_its_signature(stack, signed_target, sent_target, signed_body, sent_body):
    method = "POST" if signed_body else "GET"
    url = stack.gateway.url
    signed = sigv4_headers(method, f"{url}{signed_target}", signed_body, content_type="application/json")
    calls = share_calls(stack)

    answer = requests.request(
        method, f"{url}{sent_target}", data=sent_body, headers=signed | {"Content-Type": "application/json"}, timeout=30
    )

    assert (answer.status_code, answer.json()) == (403, SIGNATURE_MISMATCH)
    assert share_calls(stack) == calls


def test_a_key_the_stack_does_not_know_is_refused(stack):
    unknown = Credentials("AKIAUNKNOWNLOCALKEY1", "not-a-key-of-this-stack")

    answer = requests.get(f"{stack.gateway.url}/v1/shares/kdocs/777", auth=SigV4(unknown), timeout=30)

    assert (answer.status_code, answer.json()) == (403, INVALID_TOKEN)


def test_a_signature_made_10_minutes_ago_has_expired(stack):
    ten_minutes_ago = datetime.now(UTC) - timedelta(minutes=10)

    answer = requests.get(f"{stack.gateway.url}/v1/shares/kdocs/777", auth=SigV4(at=ten_minutes_ago), timeout=30)

    assert answer.status_code == 403
    assert EXPIRED.fullmatch(answer.json()["message"]), answer.json()


def test_the_awscurl_cli_gets_and_posts(stack):
    keys = ADMIN.credentials
    awscurl = [str(AWSCURL), "--service", "execute-api", "--region", REGION]
    awscurl += ["--access_key", keys.access_key_id, "--secret_key", keys.secret_access_key]
    body = json.dumps(docs_example("pan123_create.json"), ensure_ascii=False)
    url = f"{stack.gateway.url}/v1/shares/123pan"

    posted = subprocess.run(
        [*awscurl, "-X", "POST", "-H", "content-type: application/json", "-d", body, url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    listed = subprocess.run([*awscurl, f"{url}?limit=100"], capture_output=True, text=True, timeout=60, check=True)

    share = json.loads(posted.stdout)
    assert share["name"] == docs_example("pan123_create.json")["shareName"]
    assert share["share_id"] in [item["share_id"] for item in json.loads(listed.stdout)["shares"]]


# ---------- JWT: the template's JWT authorizer, with the local issuer ----------
def test_a_token_of_the_local_issuer_gets_the_routes_answer(jwt_stack):
    assert jwt_stack.issuer is not None
    bearer = {"Authorization": f"Bearer {jwt_stack.issuer.token(JWT_AUDIENCE)}"}
    url = f"{jwt_stack.gateway.url}/v1/shares/123pan"

    created = requests.post(url, json=docs_example("pan123_create.json"), headers=bearer, timeout=30)
    listed = requests.get(url, params={"limit": 10}, headers=bearer, timeout=30)

    assert created.status_code == 201
    assert listed.status_code == 200


def test_client_id_stands_for_a_missing_audience(jwt_stack):
    issuer = jwt_stack.issuer
    assert issuer is not None
    now = int(time.time())
    claims = {"iss": issuer.url, "sub": "local-user", "client_id": JWT_AUDIENCE, "iat": now, "exp": now + 60}
    token = jwt.encode(claims, issuer.key, algorithm="RS256", headers={"kid": issuer.kid})

    answer = requests.get(
        f"{jwt_stack.gateway.url}/v1/shares/123pan", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )

    assert answer.status_code == 200


def signed_by_another_key(issuer: JwtIssuer, kid: str) -> str:
    """A token the issuer could have minted, signed with a key that is not in its JWKS."""
    now = int(time.time())
    claims = {"iss": issuer.url, "sub": "local-user", "aud": JWT_AUDIENCE, "iat": now, "exp": now + 60}
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, other_key, algorithm="RS256", headers={"kid": kid})


REFUSED_TOKENS: dict[str, Callable[[JwtIssuer], str]] = {
    "another-key-same-kid": lambda issuer: signed_by_another_key(issuer, issuer.kid),
    "another-key-unknown-kid": lambda issuer: signed_by_another_key(issuer, "not-in-the-jwks"),
    "wrong-audience": lambda issuer: issuer.token("someone-else"),
    "wrong-issuer": lambda issuer: issuer.token(JWT_AUDIENCE, iss="https://issuer.example.com"),
    "expired": lambda issuer: issuer.token(JWT_AUDIENCE, lifetime_s=-60),
    "not-yet-valid": lambda issuer: issuer.token(JWT_AUDIENCE, nbf=int(time.time()) + 600),
    "issued-in-the-future": lambda issuer: issuer.token(JWT_AUDIENCE, iat=int(time.time()) + 600),
    "hs256": lambda issuer: jwt.encode({"iss": issuer.url, "aud": JWT_AUDIENCE}, "k" * 32, algorithm="HS256"),
    "malformed": lambda issuer: "not-a-token",
}


@pytest.mark.parametrize("make_token", REFUSED_TOKENS.values(), ids=REFUSED_TOKENS.keys())
def test_a_token_api_gateway_would_refuse_is_unauthorized(jwt_stack, make_token):
    calls = share_calls(jwt_stack)

    answer = requests.get(
        f"{jwt_stack.gateway.url}/v1/shares/kdocs/777",
        headers={"Authorization": f"Bearer {make_token(jwt_stack.issuer)}"},
        timeout=30,
    )

    assert (answer.status_code, answer.json()) == (401, UNAUTHORIZED)
    assert answer.headers["www-authenticate"].startswith(INVALID_TOKEN_CHALLENGE)
    assert share_calls(jwt_stack) == calls


def test_the_challenge_names_what_aws_names(jwt_stack):
    assert jwt_stack.issuer is not None
    url = f"{jwt_stack.gateway.url}/v1/shares/kdocs/777"

    missing = requests.get(url, timeout=30)
    audience = requests.get(url, headers={"Authorization": jwt_stack.issuer.token("someone-else")}, timeout=30)
    segments = requests.get(url, headers={"Authorization": "Bearer a.b"}, timeout=30)

    assert (missing.status_code, missing.json(), missing.headers["www-authenticate"]) == (401, UNAUTHORIZED, "Bearer")
    assert audience.headers["www-authenticate"] == (
        f'{INVALID_TOKEN_CHALLENGE}the token does not have a valid audience"'
    )
    assert (
        segments.headers["www-authenticate"]
        == f'{INVALID_TOKEN_CHALLENGE}token contains an invalid number of segments"'
    )


def test_a_sigv4_signature_is_no_token_for_a_jwt_route(jwt_stack):
    answer = requests.get(f"{jwt_stack.gateway.url}/v1/shares/123pan", auth=SigV4(), timeout=30)

    assert (answer.status_code, answer.json()) == (401, UNAUTHORIZED)


# ---------- open ----------
def test_open_takes_plain_requests(open_stack):
    listed = requests.get(f"{open_stack.gateway.url}/v1/shares/123pan", params={"limit": 10}, timeout=30)
    created = requests.post(
        f"{open_stack.gateway.url}/v1/shares/kdocs", json=docs_example("kdocs_create.json"), timeout=30
    )

    assert (listed.status_code, created.status_code) == (200, 200)


# ---------- what the function sees ----------
ROLE_PRINCIPAL = "arn:aws:sts::123456789012:assumed-role/echo-role/echo"
ROLE = Identity(ROLE_PRINCIPAL, Credentials.for_principal(ROLE_PRINCIPAL), ())
ECHO_AUDIENCE = "echo-audience"


@pytest.fixture(scope="module")
def echo() -> Iterator[tuple[Gateway, JwtIssuer]]:
    """A gateway with an AWS_IAM route and a JWT route in front of tests/handlers/authorizer_echo.py."""
    issuer = JwtIssuer().start()
    spec = FunctionSpec("Echo", "echo", HANDLERS, "authorizer_echo", "lambda_handler", environment={})
    runtime = FunctionRuntime(spec, {})
    routes = [
        HttpRoute("GET", "/iam", "Echo", "AWS_IAM"),
        HttpRoute("GET", "/jwt", "Echo", "JWT", JwtConfiguration(issuer.url, ("other", ECHO_AUDIENCE))),
    ]
    gateway = Gateway(routes, {"Echo": runtime}, authorization=Authorization([ADMIN, ROLE], routes)).start()
    yield gateway, issuer
    gateway.stop()
    runtime.stop()
    issuer.stop()


def authorizer_seen(answer: requests.Response) -> Any:
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_function_sees_the_signers_iam_identity(echo):
    gateway, _ = echo

    seen = authorizer_seen(requests.get(f"{gateway.url}/iam", auth=SigV4(ROLE.credentials), timeout=30))

    assert seen == {
        "iam": {
            "accessKey": ROLE.credentials.access_key_id,
            "accountId": "123456789012",
            "cognitoIdentity": None,
            "principalOrgId": None,
            "userArn": ROLE_PRINCIPAL,
        }
    }


def test_the_function_sees_the_tokens_claims_as_strings(echo):
    gateway, issuer = echo
    token = issuer.token(ECHO_AUDIENCE, subject="alice", groups=["admins", "users"], verified=True)

    seen = authorizer_seen(requests.get(f"{gateway.url}/jwt", headers={"Authorization": token}, timeout=30))

    claims = seen["jwt"]["claims"]
    assert seen["jwt"]["scopes"] is None
    assert (claims["sub"], claims["aud"], claims["iss"]) == ("alice", ECHO_AUDIENCE, issuer.url)
    assert (claims["groups"], claims["verified"]) == ("[admins users]", "true")
    assert claims["exp"].isdigit() and int(claims["exp"]) > time.time()
