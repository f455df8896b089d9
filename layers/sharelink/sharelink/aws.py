"""The one boto3 Session of a function: every AWS client of it (Powertools' included) is made from it."""

from __future__ import annotations

import boto3


def session() -> boto3.Session:
    """A Session whose credentials are resolved now, so every client made from it acts as this function's role
    (Powertools' idempotency and parameters would otherwise each build a Session of their own)."""
    fresh = boto3.Session()
    fresh.get_credentials()
    return fresh
