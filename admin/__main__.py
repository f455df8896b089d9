"""Store a provider's credentials and first tokens in its secret, in AWS or in the local stack.

  python -m admin authorize-kdocs --secret-id sharelink/kdocs --app-id APPID       (asks for the app key)
  python -m admin authorize-123pan --secret-id sharelink/pan123 --client-id ID     (asks for the client secret)

AWS credentials and region come from the usual places; AWS_ENDPOINT_URL points at the local stack's moto (the region
is then us-east-1, the local stack's, unless one is set). Nothing secret is printed. An expected failure (no region or
credentials, no such secret, access denied, the provider refusing the credentials or out of reach) is one line on
stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import secrets
import sys
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from admin import aws
from admin.aws import CommandError, aws_call
from sharelink.errors import SharelinkError
from sharelink.providers import kdocs, pan123
from sharelink.share import rfc3339
from sharelink.transport import HttpTransport

CALLBACK = "http://127.0.0.1:8765/callback"
TIMEOUT_S = 10


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return aws.run_command(args.command, lambda: _authorize(args), interrupted="interrupted, nothing stored")


def _authorize(args: argparse.Namespace) -> int:
    region = aws.region()
    client = aws.client("secretsmanager", region)
    what = f"secret {args.secret_id} (Secrets Manager, {region})"
    with aws_call(what):
        secret = _json_object(client.get_secret_value(SecretId=args.secret_id).get("SecretString"), what)
    try:
        stored = (
            _authorize_kdocs(args, secret) if args.command == "authorize-kdocs" else _authorize_pan123(args, secret)
        )
    except SharelinkError as error:
        raise CommandError(f"{args.base_url}: {error.message} ({error.code}); nothing stored") from None
    with aws_call(what):
        client.put_secret_value(SecretId=args.secret_id, SecretString=json.dumps(stored))
    print(
        f"stored the {args.command.removeprefix('authorize-')} tokens in {args.secret_id}; "
        f"the access token expires at {stored['expires_at']}"
    )
    return 0


def _json_object(text: str | None, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise CommandError(f"{what} does not hold a JSON object (as the stack creates it)")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m admin", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    kdocs_command = commands.add_parser("authorize-kdocs", help="consent once in a browser, store the tokens")
    kdocs_command.add_argument("--secret-id", required=True)
    kdocs_command.add_argument("--app-id", help="default: the secret's app_id")
    kdocs_command.add_argument("--base-url", default=os.environ.get("KDOCS_BASE_URL", kdocs.DEFAULT_BASE_URL))
    kdocs_command.add_argument(
        "--redirect-uri", default=CALLBACK, help="a 127.0.0.1 URI is served once to take the code"
    )
    kdocs_command.add_argument("--code", help="the code from the redirect, if you already have it")
    kdocs_command.add_argument("--wait", type=float, default=300, help="seconds to wait for the redirect")
    pan123_command = commands.add_parser("authorize-123pan", help="store client credentials and a first token")
    pan123_command.add_argument("--secret-id", required=True)
    pan123_command.add_argument("--client-id", help="default: the secret's client_id")
    pan123_command.add_argument("--base-url", default=os.environ.get("PAN123_BASE_URL", pan123.DEFAULT_BASE_URL))
    return parser


def _ask(variable: str, prompt: str, stored: Any) -> str:
    """A credential from the environment, else the secret, else typed in without echo."""
    given = os.environ.get(variable) or stored
    if given:
        return str(given)
    try:
        typed = getpass.getpass(prompt)
    except EOFError:  # stdin ended before a line: end the prompt's
        print(file=sys.stderr)
        typed = ""
    if not typed:
        raise CommandError(f"no {prompt.strip().rstrip(':')} given: set {variable}, or type it when asked")
    return typed


def _authorize_kdocs(args: argparse.Namespace, secret: dict[str, Any]) -> dict[str, Any]:
    app_id = args.app_id or secret.get("app_id")
    if not app_id:
        raise CommandError("give --app-id (the secret holds none)")
    app_key = _ask("KDOCS_APP_KEY", "KDocs app key: ", secret.get("app_key"))
    state = secrets.token_urlsafe(16)
    print("Open this address, sign in and allow access:", flush=True)
    print(f"  {kdocs.consent_url(args.base_url, app_id, args.redirect_uri, state)}", flush=True)
    code = args.code or _code_from_redirect(args.redirect_uri, state, args.wait)
    transport = HttpTransport(args.base_url, provider=kdocs.PROVIDER, timeout_s=TIMEOUT_S)
    issued = kdocs.exchange_code(transport, app_id, app_key, code, datetime.now(UTC))
    return secret | {
        "app_id": app_id,
        "app_key": app_key,
        "access_token": issued.access_token,
        "refresh_token": issued.refresh_token,
        "expires_at": rfc3339(issued.expires_at),
    }


def _authorize_pan123(args: argparse.Namespace, secret: dict[str, Any]) -> dict[str, Any]:
    client_id = args.client_id or secret.get("client_id")
    if not client_id:
        raise CommandError("give --client-id (the secret holds none)")
    client_secret = _ask("PAN123_CLIENT_SECRET", "123pan client secret: ", secret.get("client_secret"))
    transport = HttpTransport(args.base_url, provider=pan123.PROVIDER, timeout_s=TIMEOUT_S)
    issued = pan123.mint_token(transport, client_id, client_secret)
    return secret | {
        "client_id": client_id,
        "client_secret": client_secret,
        "access_token": issued.access_token,
        "expires_at": rfc3339(issued.expires_at),
    }


def _code_from_redirect(redirect_uri: str, state: str, wait_s: float) -> str:
    """Serve the redirect URI once on 127.0.0.1 and take the code from it; anything else: ask for it."""
    target = urlsplit(redirect_uri)
    if target.hostname != "127.0.0.1":
        try:
            return input("Paste the code from the address you were sent to: ").strip()
        except EOFError:
            raise CommandError("no code given: paste it when asked, or give --code") from None
    received: dict[str, str] = {}

    class Callback(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {key: values[0] for key, values in parse_qs(url.query).items()}
            accepted = url.path == target.path and query.get("state") == state and "code" in query
            if accepted:
                received["code"] = query["code"]
            self.send_response(200 if accepted else 400)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.end_headers()
            self.wfile.write(
                b"sharelink: authorized, you can close this tab" if accepted else b"not the expected redirect"
            )

        def log_message(self, format: str, *args: Any) -> None:
            pass

    deadline = time.monotonic() + wait_s
    try:
        server = HTTPServer(("127.0.0.1", target.port or 80), Callback)
    except OSError as error:
        raise CommandError(f"cannot take the redirect on {redirect_uri} ({error.strerror}): give --code") from None
    with server:
        while "code" not in received:
            server.timeout = deadline - time.monotonic()
            if server.timeout <= 0:
                raise CommandError(f"no redirect came to {redirect_uri} within {wait_s:g} s; nothing stored")
            server.handle_request()  # one request, or none within the timeout
    return received["code"]


if __name__ == "__main__":
    sys.exit(main())
