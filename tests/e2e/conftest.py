"""The local stack as the end-to-end tests use it: one per test module, watched for leaked secrets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.stack import LocalStack
from tests.conftest import observe_results
from tests.leaks import observe

# Failed share requests come back after this instead of the template's 360 s: SQS's own redelivery, in seconds. The
# functions the queues drive get it as their timeout (Lambda refuses a queue whose visibility is shorter), longer than
# a batch takes here (a cold start's INIT has its own time), so no message comes back while still in work.
QUEUE_VISIBILITY_TIMEOUT_S = 3
# The events function itself puts a retry off until an unknown create has settled (60 s by default): made short too, as
# the poller no longer shortens what the function asked for.
PARAMETERS = {"ProviderSettleSeconds": "1"}


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(
        sim_lifetime_s=600,
        parameters=PARAMETERS,
        queue_visibility_timeout_s=QUEUE_VISIBILITY_TIMEOUT_S,
        queue_function_timeout_s=QUEUE_VISIBILITY_TIMEOUT_S,
    ) as running:
        running.gateway.observers.append(observe)
        yield running
        observe_results(running.aws)
