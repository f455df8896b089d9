"""The time an invocation has left, for every provider call made in it."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager

# Time kept back from the invocation's deadline to answer (API Gateway, the result object, the batch report).
ANSWER_RESERVE_S = 1.0


class Deadline:
    """When the current invocation must have answered. Lambda runs one invocation at a time per process, so one
    per process: set for the length of each invocation from its context, read by every provider call; outside an
    invocation there is none."""

    def __init__(self) -> None:
        self._at = math.inf

    @contextmanager
    def running(self, remaining_ms: int) -> Iterator[None]:
        self._at = time.monotonic() + remaining_ms / 1000 - ANSWER_RESERVE_S
        try:
            yield
        finally:
            self._at = math.inf

    def left(self) -> float:
        return self._at - time.monotonic()


DEADLINE = Deadline()
