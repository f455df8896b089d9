"""What every test must not show: the simulators' tokens, client secrets and app keys."""

from __future__ import annotations

from local.simulators.base import SimServer

# Answers, result objects and gateway responses the fixtures saw during the current test.
OBSERVED: list[str] = []


def observe(text: str | bytes) -> None:
    OBSERVED.append(text.decode(errors="replace") if isinstance(text, bytes) else text)


def leaked(texts: list[str]) -> int:
    """How many known secret values appear in `texts` (the values themselves are never reported)."""
    secrets = set().union(*(sim.secret_values() for sim in SimServer.instances))
    return sum(any(secret in text for text in texts) for secret in secrets if secret)
