"""The local stack as the end-to-end tests use it: one per test module, watched for leaked secrets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.stack import LocalStack
from tests.conftest import observe_results
from tests.leaks import observe


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(sim_lifetime_s=600) as running:
        running.gateway.observers.append(observe)
        yield running
        observe_results(running.aws)
