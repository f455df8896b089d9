"""Fixtures of the adversarial suite: the handlers and simulators of tests/conftest.py by route, and a local stack."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from local.stack import LocalStack
from tests.adversarial.contract import ROUTES, Answer, handle, is_caller_refusal, share_calls
from tests.conftest import observe_results
from tests.leaks import observe


class Api:
    """Sends an event to a route's handler, in-process.

    `fresh` (for a request that may reach the provider): the route's simulator and AWS start afresh, the secret holding
    a live token (tests/conftest.py's `pan123_sim`, `kdocs_sim`). Otherwise (a request the contract refuses before any
    call) only the simulator's recorded requests are cleared: a refusal touches neither AWS nor the provider, and
    skipping the reset keeps hundreds of cases within seconds.
    """

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self.request = request

    def sim(self, route: str, *, fresh: bool = True) -> Any:
        provider = ROUTES[route][0]
        return self.request.getfixturevalue(f"{provider}_sim" if fresh else f"{provider}_sim_session")

    def send(self, route: str, event: dict[str, Any], *, fresh: bool = True) -> Answer:
        sim = self.sim(route, fresh=fresh)  # first: the handler's first import needs the simulator's URL
        if not fresh:
            sim.requests.clear()
        return handle(self.request.getfixturevalue(f"{ROUTES[route][0]}_api"), event)

    def send_refused(self, route: str, event: dict[str, Any]) -> Answer:
        """Send a request the contract refuses before any call. Should it go further (a share call, or an answer
        that is no refusal of the caller's input), it is sent again against a fresh simulator and AWS, so that the
        failure shows what the request really does rather than what stale state made of it."""
        answer = self.send(route, event, fresh=False)
        if self.share_calls(route) or not is_caller_refusal(answer):
            answer = self.send(route, event, fresh=True)
        return answer

    def share_calls(self, route: str) -> list[str]:
        return share_calls(self.sim(route, fresh=False))


@pytest.fixture
def api(request: pytest.FixtureRequest) -> Api:
    return Api(request)


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    """The local stack (gateway, function workers, simulators, moto), as tests/e2e/conftest.py starts it."""
    with LocalStack(sim_lifetime_s=600) as running:
        running.gateway.observers.append(observe)
        yield running
        observe_results(running.aws)
