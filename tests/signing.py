"""Requests to the local gateway signed as API Gateway's IAM authorization wants them: SigV4, botocore's signer.

`SigV4` signs a `requests` request; `sigv4_headers` gives the headers to add to a request sent some other way
(http.client, raw bytes). Both sign as the emulator's admin unless given other credentials (a function's role, with
its session token), and sign the Host, X-Amz-Date, the Content-Type if any, the session token and the body.
"""

from __future__ import annotations

from datetime import datetime

import requests
from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from local.aws.emulator import REGION
from local.aws.iam import ADMIN, Credentials

SERVICE = "execute-api"


def sigv4_headers(
    method: str,
    url: str,
    body: bytes = b"",
    *,
    content_type: str | None = None,
    credentials: Credentials = ADMIN.credentials,
    at: datetime | None = None,
) -> dict[str, str]:
    """Authorization, X-Amz-Date and, with a session's keys, X-Amz-Security-Token for this request; `at` signs it
    as of that time instead of now."""
    request = AWSRequest(
        method=method, url=url, data=body, headers={"Content-Type": content_type} if content_type else {}
    )
    signer = SigV4Auth(
        BotoCredentials(credentials.access_key_id, credentials.secret_access_key, credentials.session_token),
        SERVICE,
        REGION,
    )
    if at is None:
        signer.add_auth(request)
    else:
        _sign_as_of(signer, request, at)
    return {name: value for name, value in request.headers.items() if name != "Content-Type"}


def _sign_as_of(signer: SigV4Auth, request: AWSRequest, at: datetime) -> None:
    """What SigV4Auth.add_auth does, with `at` for the time (add_auth always signs as of now)."""
    request.context["timestamp"] = at.strftime(SIGV4_TIMESTAMP)
    request.headers["X-Amz-Date"] = request.context["timestamp"]
    if signer.credentials.token:
        request.headers["X-Amz-Security-Token"] = signer.credentials.token
    signature = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    signed_headers = signer.signed_headers(signer.headers_to_sign(request))
    request.headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={signer.scope(request)}, SignedHeaders={signed_headers}, Signature={signature}"
    )


class SigV4(requests.auth.AuthBase):
    """`requests.get(url, auth=SigV4())`: the request as sent (its final URL and body), signed."""

    def __init__(self, credentials: Credentials = ADMIN.credentials, at: datetime | None = None) -> None:
        self.credentials = credentials
        self.at = at

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body.encode() if isinstance(request.body, str) else request.body or b""
        signed = sigv4_headers(
            str(request.method),
            str(request.url),
            body,
            content_type=request.headers.get("Content-Type"),
            credentials=self.credentials,
            at=self.at,
        )
        request.headers.update(signed)
        return request
