"""A local OpenID Connect issuer on 127.0.0.1, standing in for the identity provider of the template's JwtIssuer.

It serves what API Gateway's JWT authorizer reads from an issuer ("Control access to HTTP APIs with JWT authorizers
in API Gateway"): the discovery document at `{issuer}/.well-known/openid-configuration` (OpenID Connect Discovery
1.0: `issuer`, `jwks_uri`) and, at that `jwks_uri`, the JWKS with the public half of an RSA key made at start.
`token()` mints RS256 tokens signed with that key, its `kid` in the header, as the identity provider would issue.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from local.runtime.authorization import DISCOVERY_PATH

JWKS_PATH = "/.well-known/jwks.json"
ALGORITHM = "RS256"


class JwtIssuer:
    """Bound on creation (so `url`, the issuer, is known); `start` serves the discovery document and the JWKS."""

    def __init__(self, port: int = 0) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = uuid.uuid4().hex
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self.server.daemon_threads = True

    @property
    def url(self) -> str:
        """The issuer identifier: the `iss` of its tokens, and the base of its discovery document."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> JwtIssuer:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "jwks_uri": f"{self.url}{JWKS_PATH}",
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [ALGORITHM],
        }

    def jwks(self) -> dict[str, Any]:
        public = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {"keys": [public | {"kid": self.kid, "use": "sig", "alg": ALGORITHM}]}

    def token(self, audience: str, subject: str = "local-user", lifetime_s: int = 3600, **claims: Any) -> str:
        """A signed token for `audience`; `claims` add to or replace the standard ones (iss, sub, aud, iat, exp)."""
        now = int(time.time())
        payload = {"iss": self.url, "sub": subject, "aud": audience, "iat": now, "exp": now + lifetime_s} | claims
        return jwt.encode(payload, self.key, algorithm=ALGORITHM, headers={"kid": self.kid})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                documents = {DISCOVERY_PATH: issuer.discovery, JWKS_PATH: issuer.jwks}
                document = documents.get(self.path)
                payload = json.dumps(document() if document else {"error": "not_found"}).encode()
                self.send_response(200 if document else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
