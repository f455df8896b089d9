"""The local stack: AWS in moto, the provider simulators, and the gateway, wired from template.yaml."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests

from local.aws import LocalAws
from local.gateway import Gateway
from local.pan123_sim import Pan123Simulator
from local.runtime import FunctionRuntime
from local.template import Template

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
SIM_CLIENT = ("sim-client", "sim-secret")


class LocalStack:
    """Start with `start()`, or use as a context manager. Pass `pan123_url` and `pan123_secret` for the real 123pan."""

    def __init__(
        self,
        *,
        port: int = 0,
        pan123_url: str | None = None,
        pan123_secret: dict[str, str] | None = None,
        parameters: dict[str, str] | None = None,
        sim_lifetime_s: float = 900,
    ) -> None:
        self.port = port
        self.pan123_url = pan123_url
        self.pan123_secret = pan123_secret
        self.parameters = parameters or {}
        self.sim_lifetime_s = sim_lifetime_s
        self.aws = LocalAws()
        self.pan123_sim: Pan123Simulator | None = None
        self.runtimes: dict[str, FunctionRuntime] = {}

    def start(self) -> LocalStack:
        self.aws.start()
        if self.pan123_url is None:
            self.pan123_sim = Pan123Simulator(clients=dict([SIM_CLIENT])).start(lifetime_s=self.sim_lifetime_s)
            self.pan123_url = self.pan123_sim.url
            self.pan123_secret = pan123_sim_secret(self.pan123_url)
        self.template = Template(TEMPLATE, {"Pan123BaseUrl": self.pan123_url} | self.parameters)
        self.aws.deploy(self.template, {"Pan123Secret": self.pan123_secret or {}})
        self.runtimes = {
            logical_id: FunctionRuntime(spec, self.aws.env) for logical_id, spec in self.template.functions().items()
        }
        self.gateway = Gateway(self.template.http_routes(), self.runtimes, self.port).start()
        return self

    def stop(self) -> None:
        self.gateway.stop()
        for runtime in self.runtimes.values():
            runtime.stop()
        if self.pan123_sim:
            self.pan123_sim.stop()
        self.aws.stop()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def pan123_sim_secret(base_url: str) -> dict[str, str]:
    """The secret a 123pan user would store: client credentials and a token the simulator issued."""
    client_id, client_secret = SIM_CLIENT
    reply = requests.post(
        f"{base_url}/api/v1/access_token",
        headers={"Platform": "open_platform"},
        json={"clientID": client_id, "clientSecret": client_secret},
        timeout=5,
    ).json()
    return {
        "client_id": client_id,
        "client_secret": client_secret,
        "access_token": reply["data"]["accessToken"],
        "expires_at": reply["data"]["expiredAt"],
    }


def docs_example(name: str) -> dict[str, Any]:
    """The body of a sample event in events/ (for 123pan: share-create.md's example, as is)."""
    return json.loads(json.loads((ROOT / "events" / name).read_text())["body"])
