"""Run one provider simulator alone on loopback: `python -m local.simulators 123pan --port 8123` (or `kdocs`).

It prints its URL, the demo credentials and the demo files, then serves until Ctrl-C or SIGTERM. Point a client's
base URL at the printed URL; /__sim/requests, /__sim/faults, /__sim/clock and /__sim/reset control the simulator
(local/simulators/base.py). --port 0 picks a free port.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from urllib.parse import urlencode

from local.simulators.base import SimServer
from local.simulators.kdocs import ALL_SCOPES, DEFAULT_APP, DEFAULT_USER, KdocsSimulator
from local.simulators.pan123 import DOCS_EXAMPLE_FILES, NUMBERED_FILES, Pan123Simulator

STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def pan123_banner(sim: Pan123Simulator) -> str:
    credentials = "; ".join(f"clientID {client_id}, clientSecret {secret}" for client_id, secret in sim.clients.items())
    files = f"{', '.join(map(str, DOCS_EXAMPLE_FILES))} and {NUMBERED_FILES.start} to {NUMBERED_FILES.stop - 1}"
    return (
        f"123pan simulator on {sim.url}\n"
        f"  demo credentials: {credentials}\n"
        f"  demo file ids: {files}\n"
        f"  every call sends the header Platform: open_platform; token: POST {sim.url}/api/v1/access_token; "
        f"uploads: POST {sim.url}/upload/v2/file/create, slices to the same URL"
    )


def kdocs_banner(sim: KdocsSimulator) -> str:
    credentials = "; ".join(f"app_id {app_id}, app_key {app_key}" for app_id, app_key in sim.apps.items())
    files = "; ".join(f"{token} ({file['filename']}, owner {file['owner']})" for token, file in sim.files.items())
    consent = urlencode(
        {"app_id": DEFAULT_APP, "scope": ALL_SCOPES, "redirect_uri": "http://127.0.0.1/cb", "state": "s"}
    )
    return (
        f"KDocs simulator on {sim.url}\n"
        f"  demo credentials: {credentials} (user {DEFAULT_USER} consents at once)\n"
        f"  demo file tokens: {files}\n"
        f"  consent: {sim.url}/h5/auth?{consent}\n"
        f"  then exchange the code: GET {sim.url}/api/v1/oauth2/access_token?code=...&app_id=...&app_key=..."
    )


SIMULATORS: dict[str, tuple[Callable[[], SimServer], Callable[..., str]]] = {
    "123pan": (Pan123Simulator, pan123_banner),
    "kdocs": (KdocsSimulator, kdocs_banner),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.simulators", description=__doc__)
    parser.add_argument("provider", choices=sorted(SIMULATORS))
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    new_simulator, banner = SIMULATORS[args.provider]
    # Blocked before the server's threads start, so that they inherit the mask and only sigwait() sees the signals.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        sim = new_simulator().start(lifetime_s=threading.TIMEOUT_MAX, port=args.port)
    except OSError as error:
        print(f"cannot listen on 127.0.0.1:{args.port}: {error.strerror}", file=sys.stderr)
        return 1
    print(f"{banner(sim)}\nCtrl-C stops it.", flush=True)
    signal.sigwait(STOP_SIGNALS)
    sim.stop()
    print(f"{args.provider} simulator stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
