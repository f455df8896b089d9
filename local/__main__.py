"""`python -m local run`: start the local stack, create a share through the gateway, print it, stay up."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time

import requests

from local.stack import LocalStack, docs_example


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__)
    parser.add_argument("command", choices=["run"])
    parser.add_argument("--port", type=int, default=int(os.environ.get("SHARELINK_PORT", "8787")))
    parser.add_argument("--once", action="store_true", help="exit after the demo share instead of staying up")
    args = parser.parse_args()

    with LocalStack(port=args.port, sim_lifetime_s=7 * 24 * 3600, real=_real_providers()) as stack:
        print(f"local stack up: gateway {stack.gateway.url}, AWS (moto) {stack.aws.endpoint}", flush=True)
        ok = (
            all([demo(stack.gateway.url, *example) for example in DEMOS]) and demo_storage(stack) and demo_upload(stack)
        )
        if not ok:
            return 1
        if not args.once:
            pan123_body = json.dumps(docs_example(DEMOS[0][1]), ensure_ascii=False)
            print(
                f"\nstaying up; try:\n  curl -s -X POST {stack.gateway.url}/v1/shares/123pan "
                f"-H 'content-type: application/json' -d '{pan123_body}'\n"
                f"  curl -s '{stack.gateway.url}/v1/shares/123pan?limit=10'\n"
                f"  curl -s {stack.gateway.url}/v1/shares/kdocs/777\nCtrl-C stops it.",
                flush=True,
            )
            stop_signals = {signal.SIGINT, signal.SIGTERM}
            signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
            signal.sigwait(stop_signals)
    return 0


DEMOS = [("/v1/shares/123pan", "pan123_create.json", 201), ("/v1/shares/kdocs", "kdocs_create.json", 200)]
REAL_BASE_URLS = {"pan123": "https://open-api.123pan.com", "kdocs": "https://developer.kdocs.cn"}


def demo(gateway_url: str, path: str, event_name: str, expected_status: int) -> bool:
    """Post a provider docs' example body through the gateway and print the answer."""
    body = docs_example(event_name)
    reply = requests.post(f"{gateway_url}{path}", json=body, timeout=30)
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
