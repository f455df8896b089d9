"""`python -m local run`: start the local stack, create a share through the gateway, print it, stay up."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys

import requests

from local.stack import LocalStack, docs_example


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__)
    parser.add_argument("command", choices=["run"])
    parser.add_argument("--port", type=int, default=int(os.environ.get("SHARELINK_PORT", "8787")))
    parser.add_argument("--once", action="store_true", help="exit after the demo share instead of staying up")
    args = parser.parse_args()

    with LocalStack(port=args.port, sim_lifetime_s=7 * 24 * 3600, **_real_pan123()) as stack:
        print(f"local stack up: gateway {stack.gateway.url}, AWS (moto) {stack.aws.endpoint}", flush=True)
        body = docs_example("pan123_create.json")
        reply = requests.post(f"{stack.gateway.url}/v1/shares/123pan", json=body, timeout=30)
        print(f"POST /v1/shares/123pan {json.dumps(body, ensure_ascii=False)} -> {reply.status_code}")
        print(json.dumps(reply.json(), ensure_ascii=False, indent=2), flush=True)
        if reply.status_code != 201:
            return 1
        if not args.once:
            print(
                f"\nstaying up; try:\n  curl -s -X POST {stack.gateway.url}/v1/shares/123pan "
                f"-H 'content-type: application/json' -d '{json.dumps(body, ensure_ascii=False)}'\n"
                f"  curl -s '{stack.gateway.url}/v1/shares/123pan?limit=10'\nCtrl-C stops it.",
                flush=True,
            )
            stop_signals = {signal.SIGINT, signal.SIGTERM}
            signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
            signal.sigwait(stop_signals)
    return 0


def _real_pan123() -> dict:
    """PAN123_BASE_URL and PAN123_SECRET_FILE (the secret's JSON) point the stack at the real 123pan."""
    if not os.environ.get("PAN123_SECRET_FILE"):
        return {}
    with open(os.environ["PAN123_SECRET_FILE"]) as secret:
        return {
            "pan123_url": os.environ.get("PAN123_BASE_URL", "https://open-api.123pan.com"),
            "pan123_secret": json.load(secret),
        }


if __name__ == "__main__":
    sys.exit(main())
