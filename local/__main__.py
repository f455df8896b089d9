"""`python -m local run [--auth template|jwt|open]`: start the local stack, create shares through the gateway, print
them, stay up.

At start it prints how the gateway authorizes and what a caller needs for that (SigV4 keys and an awscurl command, a
bearer token and a curl command, or nothing), the AWS endpoint, region and credentials for boto3 and the AWS CLI, and
each simulator's URL and demo credentials. Its own requests to the gateway are authorized the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from local.aws.emulator import REGION
from local.aws.iam import ADMIN
from local.runtime.authorization import SERVICE
from local.simulators.__main__ import SIMULATORS
from local.stack import AUTH_MODES, JWT_AUDIENCE, LocalStack, docs_example


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__)
    parser.add_argument("command", choices=["run"])
    parser.add_argument("--port", type=int, default=int(os.environ.get("SHARELINK_PORT", "8787")))
    parser.add_argument("--once", action="store_true", help="exit after the demo share instead of staying up")
    parser.add_argument(
        "--auth",
        choices=AUTH_MODES,
        default="template",
        help="template: as template.yaml says (IAM, SigV4); jwt: a JWT authorizer and a local issuer; open: no check",
    )
    args = parser.parse_args()

    # `kill` stops it as Ctrl-C does: a KeyboardInterrupt, so that leaving the `with` stops the stack in order.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        with LocalStack(port=args.port, sim_lifetime_s=LIFETIME_S, real=_real_providers(), auth=args.auth) as stack:
            caller = gateway_caller(stack)
            print("\n".join(startup_lines(stack, caller)), flush=True)
            ok = (
                all([demo(stack.gateway.url, caller, *example) for example in DEMOS])
                and demo_storage(stack)
                and demo_upload(stack)
            )
            if not ok:
                return 1
            if not args.once:
                url = stack.gateway.url
                pan123_body = json.dumps(docs_example(DEMOS[0][1]), ensure_ascii=False)
                tries = [
                    caller.command("POST", f"{url}/v1/shares/123pan", pan123_body),
                    caller.command("GET", f"{url}/v1/shares/123pan?limit=10"),
                    caller.command("GET", f"{url}/v1/shares/kdocs/777"),
                ]
                # Blocked before the ready line: a Ctrl-C as soon as it shows goes to sigwait, as does a second one
                # during the stop, instead of interrupting them.
                stop_signals = {signal.SIGINT, signal.SIGTERM}
                signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
                print(
                    "\nstaying up; try:\n" + "\n".join(f"  {line}" for line in tries) + "\nCtrl-C stops it.", flush=True
                )
                signal.sigwait(stop_signals)
    except KeyboardInterrupt:  # before the stack was up and its demo done: LocalStack stopped it all the same
        print("stopped", file=sys.stderr)
        return 130
    return 0


DEMOS = [("/v1/shares/123pan", "pan123_create.json", 201), ("/v1/shares/kdocs", "kdocs_create.json", 200)]
REAL_BASE_URLS = {"pan123": "https://open-api.123pan.com", "kdocs": "https://developer.kdocs.cn"}
LIFETIME_S = 7 * 24 * 3600
AWSCURL = Path(sys.executable).parent / "awscurl"
BANNERS = {simulator: banner for simulator, banner in SIMULATORS.values()}


class AdminSigV4(requests.auth.AuthBase):
    """Signs a request to the gateway with SigV4 (botocore's signer, service execute-api) as the emulator's admin."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body.encode() if isinstance(request.body, str) else request.body or b""
        content_type = {"Content-Type": request.headers["Content-Type"]} if "Content-Type" in request.headers else {}
        signed = AWSRequest(method=request.method, url=request.url, data=body, headers=content_type)
        credentials = ADMIN.credentials
        boto_credentials = BotoCredentials(credentials.access_key_id, credentials.secret_access_key)
        SigV4Auth(boto_credentials, SERVICE, REGION).add_auth(signed)
        request.headers.update(dict(signed.headers))
        return request


class Bearer(requests.auth.AuthBase):
    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


@dataclass(frozen=True)
class Caller:
    """How a client calls the gateway in the stack's auth mode: what it needs (lines to print), the auth of this
    module's own requests, and the start of a shell command (curl's options: -X, -H, -d)."""

    needs: list[str]
    auth: requests.auth.AuthBase | None
    shell: str

    def command(self, method: str, url: str, json_body: str | None = None) -> str:
        options = "" if method == "GET" else f" -X {method}"
        if json_body is not None:
            options += f" -H 'content-type: application/json' -d '{json_body}'"
        return f"{self.shell}{options} '{url}'"


def gateway_caller(stack: LocalStack) -> Caller:
    if stack.auth == "open":
        needs = ["gateway authorization: off (--auth open): no route checks SigV4 or JWT here, plain curl works"]
        return Caller(needs, None, "curl -s")
    if stack.issuer is not None:
        token = stack.issuer.token(JWT_AUDIENCE, lifetime_s=LIFETIME_S)
        needs = [
            f"gateway authorization: JWT (--auth jwt), as deployed with JwtIssuer={stack.issuer.url} and "
            f"JwtAudience={JWT_AUDIENCE}: a bearer token from that local issuer (its keys at "
            f"{stack.issuer.url}/.well-known/openid-configuration), else 401",
            f"  a token for it, valid {LIFETIME_S // 86400} days: export TOKEN={token}",
        ]
        return Caller(needs, Bearer(token), 'curl -s -H "Authorization: Bearer $TOKEN"')
    keys = ADMIN.credentials
    shell = (
        f"{AWSCURL} --service {SERVICE} --region {REGION} "
        f"--access_key {keys.access_key_id} --secret_key {keys.secret_access_key}"
    )
    needs = [
        f"gateway authorization: AWS_IAM, as template.yaml says (--auth template): requests signed with SigV4 for "
        f"service {SERVICE}, region {REGION}, with keys the local stack knows, else 403; it checks the signature and "
        "the key, not the caller's IAM policy (execute-api:Invoke)",
        f"  sign as the local admin: access key id {keys.access_key_id}, secret access key "
        f"{keys.secret_access_key} (the emulator's test credentials, not secrets)",
    ]
    return Caller(needs, AdminSigV4(), shell)


def startup_lines(stack: LocalStack, caller: Caller) -> list[str]:
    """One block (no blank line): the gateway and how to call it, the local AWS, the simulators or real providers."""
    keys = ADMIN.credentials
    return [
        f"local stack up: gateway {stack.gateway.url}, AWS (moto) {stack.aws.endpoint}",
        *caller.needs,
        f"  {caller.command('GET', f'{stack.gateway.url}/v1/shares/123pan?limit=10')}",
        f"AWS for boto3 and the AWS CLI: AWS_ENDPOINT_URL={stack.aws.endpoint} AWS_DEFAULT_REGION={REGION} "
        f"AWS_ACCESS_KEY_ID={keys.access_key_id} AWS_SECRET_ACCESS_KEY={keys.secret_access_key}",
        *[f"{name}: the real API at {stack.real[name][0]}" for name in stack.real],
        *[BANNERS[type(sim)](sim) for sim in stack.sims.values()],
    ]


def demo(gateway_url: str, caller: Caller, path: str, event_name: str, expected_status: int) -> bool:
    """Post a provider docs' example body through the gateway, authorized as `caller`, and print the answer."""
    body = docs_example(event_name)
    reply = requests.post(f"{gateway_url}{path}", json=body, auth=caller.auth, timeout=30)
    print(f"\nPOST {path} {json.dumps(body, ensure_ascii=False)} -> {reply.status_code}")
    print(json.dumps(reply.json(), ensure_ascii=False, indent=2), flush=True)
    return reply.status_code == expected_status


def demo_storage(stack: LocalStack) -> bool:
    """Drop the 123pan example body into the requests bucket and print the result object it comes back as."""
    key = "requests/123pan/demo request.json"
    body = json.dumps(docs_example(DEMOS[0][1]), ensure_ascii=False).encode()
    return drop_and_print(stack, key, body, "results/" + key.removeprefix("requests/"))


def demo_upload(stack: LocalStack) -> bool:
    """Drop a file under uploads/123pan/ and print the link it comes back with (a durable execution uploads it)."""
    key = "uploads/123pan/demo/报告 2026.txt"
    return drop_and_print(stack, key, "季度报告 Q3\n".encode() * 1000, f"results/{key}.json")


def drop_and_print(stack: LocalStack, key: str, body: bytes, result_key: str) -> bool:
    bucket = stack.template.physical_name("ShareRequestsBucket")
    s3 = stack.aws.client("s3")
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            result = json.loads(s3.get_object(Bucket=bucket, Key=result_key)["Body"].read())
        except s3.exceptions.NoSuchKey:
            time.sleep(0.2)
            continue
        print(f"\nPUT s3://{bucket}/{key} -> s3://{bucket}/{result_key}")
        print(json.dumps(result, ensure_ascii=False, indent=2), flush=True)
        return bool(result["status"] == "created")
    print(f"no result for s3://{bucket}/{key} within 60 s", flush=True)
    return False


def _real_providers() -> dict[str, tuple[str, dict[str, str]]]:
    """<PROVIDER>_SECRET_FILE (the secret's JSON) and <PROVIDER>_BASE_URL point the stack at a real provider."""
    real = {}
    for name, default_url in REAL_BASE_URLS.items():
        secret_file = os.environ.get(f"{name.upper()}_SECRET_FILE")
        if secret_file:
            with open(secret_file) as secret:
                real[name] = (os.environ.get(f"{name.upper()}_BASE_URL", default_url), json.load(secret))
    return real


if __name__ == "__main__":
    sys.exit(main())
