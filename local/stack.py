"""The local stack: AWS in moto, the provider simulators, and the gateway, wired from template.yaml."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from local.aws.emulator import LocalAws
from local.aws.iam import ADMIN, function_roles
from local.runtime.authorization import Authorization
from local.runtime.durable import DurableRunner
from local.runtime.event_sources import QueuePoller, Schedule, check_visibility_timeout
from local.runtime.functions import FunctionRuntime
from local.runtime.gateway import Gateway
from local.runtime.jwt_issuer import JwtIssuer
from local.runtime.lambda_api import LambdaApi
from local.simulators.base import SimServer
from local.simulators.kdocs import ALL_SCOPES, KdocsSimulator
from local.simulators.pan123 import Pan123Simulator
from local.template import FunctionSpec, QueueSubscription, Template

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
SIM_CLIENT = ("sim-client", "sim-secret")
SIM_APP = ("sim-app", "sim-app-key")
AUTH_MODES = ("template", "jwt", "open")
JWT_AUDIENCE = "sharelink-local"


@dataclass(frozen=True)
class Provider:
    """How the local stack wires one provider: its template parameter, its secret, its simulator."""

    base_url_parameter: str
    secret: str
    simulator: type[SimServer]
    simulated_secret: Callable[[str], dict[str, str]]


class LocalStack:
    """Start with `start()`, or use as a context manager.

    `real` maps a provider ("pan123", "kdocs") to (base URL, secret JSON) to use it instead of its simulator.
    `queue_visibility_timeout_s` replaces the template's VisibilityTimeout of the queues the pollers drain, so that
    failed messages come back in seconds instead of minutes (SQS itself decides, as in AWS), and
    `queue_function_timeout_s` the Timeout of the functions they invoke. As Lambda's CreateEventSourceMapping, the
    stack refuses (EventSourceMappingRefused) a queue whose visibility timeout is shorter than its function's.

    Lambda's own API (local.runtime.lambda_api) serves Invoke and the durable-execution APIs; every function's
    environment has AWS_ENDPOINT_URL_LAMBDA pointing at it (botocore's service-specific endpoint, ahead of
    AWS_ENDPOINT_URL, which is moto's), so boto3's `lambda` client in a handler (a caller's Invoke, and the durable
    SDK's checkpoints: it builds a plain `boto3.client("lambda")`) reaches it. When the template has a durable
    function, AWS's local durable execution service (local.runtime.durable) runs its executions behind that API;
    `durable_skip_time` lets its waits end at once (tests only).

    `auth` is how the gateway authorizes (local.runtime.authorization): "template", each route as the template
    says with these parameters (AWS_IAM unless JwtIssuer and JwtAudience are given); "jwt", the same with a local
    issuer (`issuer`, local.runtime.jwt_issuer) as JwtIssuer and JWT_AUDIENCE as JwtAudience; "open", no check at all.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        real: dict[str, tuple[str, dict[str, str]]] | None = None,
        parameters: dict[str, str] | None = None,
        sim_lifetime_s: float = 900,
        queue_visibility_timeout_s: int | None = None,
        queue_function_timeout_s: int | None = None,
        durable_skip_time: bool = False,
        auth: str = "template",
    ) -> None:
        if auth not in AUTH_MODES:
            raise ValueError(f"auth is one of {AUTH_MODES}, not {auth!r}")
        self.port = port
        self.auth = auth
        self.issuer: JwtIssuer | None = None
        self.real = real or {}
        self.parameters = parameters or {}
        self.sim_lifetime_s = sim_lifetime_s
        self.queue_visibility_timeout_s = queue_visibility_timeout_s
        self.queue_function_timeout_s = queue_function_timeout_s
        self.durable_skip_time = durable_skip_time
        self.durable: DurableRunner | None = None
        # A process of its own: moto's backends are per process, so two stacks in one process would share them.
        self.aws = LocalAws(separate_process=True)
        self.sims: dict[str, Any] = {}
        self.secrets: dict[str, dict[str, str]] = {}
        self.runtimes: dict[str, FunctionRuntime] = {}
        self.pollers: list[QueuePoller] = []
        self.schedules: list[Schedule] = []

    def start(self) -> LocalStack:
        self.aws.start()
        parameters = dict(self.parameters)
        if self.auth == "jwt":
            self.issuer = JwtIssuer().start()
            parameters |= {"JwtIssuer": self.issuer.url, "JwtAudience": JWT_AUDIENCE}
        for name, provider in PROVIDERS.items():
            if name in self.real:
                base_url, self.secrets[name] = self.real[name]
            else:
                self.sims[name] = provider.simulator().start(lifetime_s=self.sim_lifetime_s)
                base_url = self.sims[name].url
                self.secrets[name] = provider.simulated_secret(base_url)
            parameters[provider.base_url_parameter] = base_url
        # The secrets first: their ARNs (a Ref in the functions' environment and roles) are chosen by the emulator.
        template = Template(TEMPLATE, parameters)
        secret_values = {PROVIDERS[name].secret: value for name, value in self.secrets.items()}
        self.template = template.with_deployed_arns(self.aws.deploy(template, secret_values))
        roles = function_roles(self.template)
        self.aws.use_roles(roles)
        functions = self._functions()
        # Lambda's API and the durable execution service before the functions, whose environment names the API.
        self.lambda_api = LambdaApi([ADMIN, *roles.values()])
        if any(spec.is_durable for spec in functions.values()):
            self.durable = DurableRunner(self.lambda_api.url, skip_time=self.durable_skip_time).start()
        lambda_endpoint = {"AWS_ENDPOINT_URL_LAMBDA": self.lambda_api.url}
        self.runtimes = {
            logical_id: FunctionRuntime(spec, self.aws.role_env(logical_id) | lambda_endpoint)
            for logical_id, spec in functions.items()
        }
        self.lambda_api.start(self.runtimes, self.durable)
        routes = self.template.http_routes()
        authorization = None if self.auth == "open" else Authorization([ADMIN, *roles.values()], routes)
        self.gateway = Gateway(routes, self.runtimes, self.port, authorization=authorization).start()
        self.pollers = [self._poller(subscription).start() for subscription in self.template.queue_subscriptions()]
        self.schedules = [
            Schedule(self.runtimes[function_id], period).start()
            for function_id, period in self.template.schedules().items()
        ]
        return self

    def _functions(self) -> dict[str, FunctionSpec]:
        functions = self.template.functions()
        if self.queue_function_timeout_s:
            for subscription in self.template.queue_subscriptions():
                spec = functions[subscription.function_id]
                functions[subscription.function_id] = replace(spec, timeout_s=self.queue_function_timeout_s)
        return functions

    def _poller(self, subscription: QueueSubscription) -> QueuePoller:
        sqs = self.aws.client("sqs")
        queue_url = self.aws.queue_url(self.template.physical_name(subscription.queue_id))
        seconds = self.queue_visibility_timeout_s or self.template.queue_visibility_timeout_s(subscription.queue_id)
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": str(seconds)})
        runtime = self.runtimes[subscription.function_id]
        check_visibility_timeout(sqs, queue_url, runtime.spec.timeout_s)
        return QueuePoller(
            sqs,
            queue_url,
            self.template.arn(subscription.queue_id),
            runtime,
            batch_size=subscription.batch_size,
            concurrency=subscription.max_concurrency,
        )

    def stop(self) -> None:
        """Stop everything, each part before what it uses, so that a shutdown is quiet and nothing outlives it:

        1. the event sources are told to stop, all at once: no SQS poll or scheduled run starts after this;
        2. the gateway takes no more requests;
        3. the functions' workers are stopped, so that no running invocation holds the shutdown up (a poller's batch
           stays in its queue, the gateway answers 500), then Lambda's API and the durable execution service;
        4. the event sources are waited for: once their threads have ended nothing polls the emulator any more;
        5. the simulators, the JWT issuer, and the emulator last.

        Safe to call on a stack whose start() failed part way: what was started is stopped.
        """
        event_sources: list[QueuePoller | Schedule] = [*self.pollers, *self.schedules]
        for source in event_sources:
            source.stopping.set()
        for part in (getattr(self, "gateway", None), *self.runtimes.values()):
            if part is not None:
                part.stop()
        lambda_api = getattr(self, "lambda_api", None)
        if lambda_api is not None:
            lambda_api.stop()
        if self.durable is not None:
            self.durable.stop()
        for source in event_sources:
            source.stop()
        for sim in self.sims.values():
            sim.stop()
        issuer = getattr(self, "issuer", None)
        if issuer is not None:
            issuer.stop()
        self.aws.stop()

    def __enter__(self) -> LocalStack:
        try:
            return self.start()
        except BaseException:  # Ctrl-C during the start too: stop what was started, then go on failing
            self.stop()
            raise

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


def kdocs_sim_secret(base_url: str) -> dict[str, str]:
    """The secret after a KDocs user's one consent: the code from the redirect, exchanged for tokens."""
    app_id, app_key = SIM_APP
    consent = requests.get(
        f"{base_url}/h5/auth",
        params={"app_id": app_id, "scope": ALL_SCOPES, "redirect_uri": "http://127.0.0.1/cb", "state": "x"},
        allow_redirects=False,
        timeout=5,
    )
    code = parse_qs(urlsplit(consent.headers["Location"]).query)["code"][0]
    tokens = requests.get(
        f"{base_url}/api/v1/oauth2/access_token",
        params={"code": code, "app_id": app_id, "app_key": app_key},
        timeout=5,
    ).json()["data"]
    expires_at = datetime.now(UTC) + timedelta(seconds=tokens["expires_in"])
    return {
        "app_id": app_id,
        "app_key": app_key,
        "access_token": tokens["access_token"],
        "refresh_token": tokens["refresh_token"],
        "expires_at": expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def docs_example(name: str) -> dict[str, Any]:
    """The body of a sample event in events/ (for 123pan: share-create.md's example, as is)."""
    return json.loads(json.loads((ROOT / "events" / name).read_text())["body"])


PROVIDERS = {
    "pan123": Provider("Pan123BaseUrl", "Pan123Secret", Pan123Simulator, pan123_sim_secret),
    "kdocs": Provider("KdocsBaseUrl", "KdocsSecret", KdocsSimulator, kdocs_sim_secret),
}
