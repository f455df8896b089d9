"""What API Gateway checks before a route's integration runs, by the route's AuthorizationType (NONE, AWS_IAM, JWT).

AWS_IAM ("Control access to HTTP APIs with IAM authorization in API Gateway"; the signature is Signature Version 4,
"Create a signed AWS API request" and "Elements of an AWS API request signature"): the request is signed for the
service `execute-api` in the stack's region, with the keys of an identity the local stack knows (the emulator's
admin and the functions' roles, local.aws.iam) and, with a session's keys, its session token (X-Amz-Security-Token);
its X-Amz-Date is within 5 minutes of now. The signature is computed again with botocore's signer over the method,
the URL, the headers the caller signed and the body, and compared in constant time. Only the signature and the key
are checked: API Gateway then evaluates the caller's IAM policies (execute-api:Invoke on the route's ARN), which the
local gateway does not. Refusals are 403 {"message": ...} with API Gateway's messages: "Forbidden" without an
Authorization header, "Authorization header requires ..." when it lacks a part, "The security token included in the
request is invalid." for an unknown key or a wrong session token, "Credential should be scoped to ..." for another
region or service, "Signature expired: ..." (or "not yet current") for a date off by more than 5 minutes, and "The
request signature we calculated does not match ..." for any other difference. Presigned URLs (the signature in the
query string) are not taken.

JWT ("Control access to HTTP APIs with JWT authorizers in API Gateway"): the token (the Authorization header, with or
without "Bearer ") must be signed with RSA by a key (its `kid`) of the JWKS at the `jwks_uri` of the issuer's
discovery document, fetched on first use and kept 2 hours as API Gateway may; `iss` is the authorizer's issuer;
`aud`, or `client_id` when there is no `aud`, is one of its audiences; `exp` is after now, `nbf` and `iat` before.
A refusal is 401 {"message":"Unauthorized"} with the `www-authenticate` header that "Troubleshooting issues with HTTP
API JWT authorizers" shows, `Bearer scope="" error="invalid_token" error_description="..."` (`Bearer` alone without
a token). The descriptions "the token does not have a valid audience" (documented) and "token contains an invalid
number of segments" (seen from API Gateway) are AWS's words; the others are PyJWT's.

An authorized request's event carries in requestContext.authorizer what payload 2.0 gives the function ("Create AWS
Lambda proxy integrations for HTTP APIs in API Gateway"): `iam` (accessKey, accountId, userArn; no callerId or
userId, as the local identities have no unique ids) or `jwt`: `claims`, every value a string as API Gateway sends
them, and `scopes`, null as API Gateway sends it when the route requires none (no route of the template does).
"""

from __future__ import annotations

import hmac
import json
import re
import threading
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from typing import Any

import jwt
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from local.aws.emulator import REGION
from local.aws.iam import Identity
from local.template import PSEUDO_PARAMETERS, HttpRoute, JwtConfiguration

SERVICE = "execute-api"
AMZ_DATE = "%Y%m%dT%H%M%SZ"
MAX_CLOCK_SKEW = timedelta(minutes=5)
SIGNATURE_PARTS = ("Credential", "Signature", "SignedHeaders")
UNRECOGNIZED_CLIENT = "The security token included in the request is invalid."
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access "
    "Key and signing method. Consult the service documentation for details."
)
DISCOVERY_PATH = "/.well-known/openid-configuration"
JWT_ALGORITHMS = ["RS256", "RS384", "RS512"]
JWKS_LIFESPAN_S = 2 * 3600


class Refused(Exception):
    """API Gateway's refusal: the status, the `{"message": ...}` body's message, and headers of its own."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class Authorization:
    """The checks of the routes' AuthorizationTypes; `identities` are the keys an AWS_IAM route takes."""

    def __init__(self, identities: Iterable[Identity], routes: list[HttpRoute]) -> None:
        unsupported = {route.authorization for route in routes} - {"NONE", "AWS_IAM", "JWT"}
        if unsupported:
            raise ValueError(f"the local gateway does not check {sorted(unsupported)} authorization")
        self.sigv4 = SigV4Verifier(identities)
        by_configuration: dict[JwtConfiguration, JwtAuthorizer] = {}
        self.jwt = {
            route: by_configuration.setdefault(route.jwt, JwtAuthorizer(route.jwt)) for route in routes if route.jwt
        }

    def authorize(
        self, route: HttpRoute, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> dict[str, Any] | None:
        """The event's requestContext.authorizer (None for a NONE route); raises Refused as API Gateway refuses."""
        lowered = {name.lower(): value for name, value in headers.items()}
        if route.authorization == "AWS_IAM":
            return {"iam": self.sigv4.verify(method, target, lowered, body)}
        if route.authorization == "JWT":
            return {"jwt": self.jwt[route].validate(lowered.get("authorization", ""))}
        return None


# ---------- AWS_IAM: Signature Version 4 ----------
class SigV4Verifier:
    def __init__(self, identities: Iterable[Identity]) -> None:
        self.identities = {identity.credentials.access_key_id: identity for identity in identities}

    def verify(self, method: str, target: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        """The payload 2.0 `iam` context of the identity whose keys signed the request (`headers` lower-cased)."""
        if not headers.get("authorization"):
            raise Refused(403, "Forbidden")
        parts = _signature_parts(headers)
        access_key_id, _, region, service, terminator = _credential_scope(parts["Credential"])
        identity = self.identities.get(access_key_id)
        # A session's keys are valid with their own token only, long-term keys (the admin's) with none.
        if identity is None or headers.get("x-amz-security-token") != identity.credentials.session_token:
            raise Refused(403, UNRECOGNIZED_CLIENT)
        _check_scope(region, service, terminator)
        _check_date(headers["x-amz-date"])
        expected = _signature(identity, method, target, headers, body, parts["SignedHeaders"].split(";"))
        if not hmac.compare_digest(expected.encode(), parts["Signature"].encode()):
            raise Refused(403, SIGNATURE_MISMATCH)
        return {
            "accessKey": access_key_id,
            "accountId": PSEUDO_PARAMETERS["AWS::AccountId"],
            "cognitoIdentity": None,
            "principalOrgId": None,
            "userArn": identity.principal,
        }


def _signature_parts(headers: dict[str, str]) -> dict[str, str]:
    """Credential, Signature and SignedHeaders of the Authorization header, which must come with an X-Amz-Date."""
    authorization = headers["authorization"]
    parts = dict(re.findall(r"(Credential|Signature|SignedHeaders)=([^,\s]+)", authorization))
    missing = [f"Authorization header requires '{name}' parameter. " for name in SIGNATURE_PARTS if name not in parts]
    if not _is_amz_date(headers.get("x-amz-date", "")):
        missing.append("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ")
    if missing:
        raise Refused(403, f"{''.join(missing)}Authorization={authorization}")
    return parts


def _is_amz_date(value: str) -> bool:
    try:
        datetime.strptime(value, AMZ_DATE)
    except ValueError:
        return False
    return True


def _credential_scope(credential: str) -> list[str]:
    """access key id/date/region/service/aws4_request."""
    scope = credential.split("/")
    if len(scope) != 5:
        example = "e.g. keyid/date/region/service/term"
        raise Refused(403, f"Credential must have exactly 5 slash-delimited elements, {example}, got '{credential}'")
    return scope


def _check_scope(region: str, service: str, terminator: str) -> None:
    problems = []
    if region != REGION:
        problems.append(f"Credential should be scoped to a valid region, not '{region}'. ")
    if service != SERVICE:
        problems.append(f"Credential should be scoped to correct service: '{SERVICE}'. ")
    if terminator != "aws4_request":
        problems.append(f"Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'. ")
    if problems:
        raise Refused(403, "".join(problems))


def _check_date(amz_date: str) -> None:
    signed = datetime.strptime(amz_date, AMZ_DATE).replace(tzinfo=UTC)
    now = datetime.now(UTC)
    earliest, latest = now - MAX_CLOCK_SKEW, now + MAX_CLOCK_SKEW
    if signed < earliest:
        raise Refused(403, f"Signature expired: {amz_date} is now earlier than {_amz(earliest)} ({_amz(now)} - 5 min.)")
    if signed > latest:
        raise Refused(
            403, f"Signature not yet current: {amz_date} is still later than {_amz(latest)} ({_amz(now)} + 5 min.)"
        )


def _amz(moment: datetime) -> str:
    return moment.strftime(AMZ_DATE)


def _signature(
    identity: Identity, method: str, target: str, headers: dict[str, str], body: bytes, signed_headers: list[str]
) -> str:
    """The signature botocore's signer computes for this request as the caller signed it, with the identity's key."""
    signed = {name: headers.get(name, "") for name in signed_headers}
    if "x-amz-content-sha256" in signed:
        # botocore takes a signed payload hash from this header as it stands: it must be the body's own.
        signed["x-amz-content-sha256"] = sha256(body).hexdigest()
    request = AWSRequest(method=method, url=f"http://{headers.get('host', '')}{target}", data=body, headers=signed)
    request.context["timestamp"] = headers["x-amz-date"]
    credentials = identity.credentials
    signer = SigV4Auth(BotoCredentials(credentials.access_key_id, credentials.secret_access_key), SERVICE, REGION)
    return str(signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request))


# ---------- JWT ----------
class JwtAuthorizer:
    """An `AWS::ApiGatewayV2::Authorizer` of type JWT: its issuer's keys are fetched on the first token."""

    def __init__(self, configuration: JwtConfiguration) -> None:
        self.configuration = configuration
        self._keys: jwt.PyJWKClient | None = None
        self._discovering = threading.Lock()

    def validate(self, authorization: str) -> dict[str, Any]:
        """The payload 2.0 `jwt` context of the token in the Authorization header."""
        token = authorization.removeprefix("Bearer ").strip()
        if not token:
            raise Refused(401, "Unauthorized", {"www-authenticate": "Bearer"})
        if token.count(".") != 2:
            raise _invalid_token("token contains an invalid number of segments")
        try:
            key = self._jwks().get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=JWT_ALGORITHMS,
                issuer=self.configuration.issuer,
                options={"require": ["exp"], "verify_aud": False},
            )
        except jwt.PyJWTError as error:
            raise _invalid_token(str(error)) from error
        if not self._has_audience(claims):
            raise _invalid_token("the token does not have a valid audience")
        return {"claims": {name: _claim_string(value) for name, value in claims.items()}, "scopes": None}

    def _jwks(self) -> jwt.PyJWKClient:
        """The issuer's JWKS, at the `jwks_uri` of its discovery document (OpenID Connect Discovery)."""
        discovery = self.configuration.issuer.rstrip("/") + DISCOVERY_PATH
        with self._discovering:
            if self._keys is None:
                try:
                    found = requests.get(discovery, timeout=5)
                    found.raise_for_status()
                    self._keys = jwt.PyJWKClient(found.json()["jwks_uri"], lifespan=JWKS_LIFESPAN_S)
                except (requests.RequestException, KeyError, ValueError) as error:
                    raise _invalid_token(f"no jwks_uri could be read from {discovery}") from error
            return self._keys

    def _has_audience(self, claims: dict[str, Any]) -> bool:
        audience = claims["aud"] if "aud" in claims else claims.get("client_id")
        return any(value in self.configuration.audience for value in _listed(audience))


def _invalid_token(description: str) -> Refused:
    quoted = description.replace('"', "'")
    challenge = f'Bearer scope="" error="invalid_token" error_description="{quoted}"'
    return Refused(401, "Unauthorized", {"www-authenticate": challenge})


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _claim_string(value: Any) -> str:
    """A claim as API Gateway passes it on: a string as is, an array as `[a b]`, anything else in JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return f"[{' '.join(_claim_string(item) for item in value)}]"
    return json.dumps(value)
