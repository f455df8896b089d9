"""Function configuration from the environment, validated once at cold start."""

from __future__ import annotations

import os

from pydantic import BaseModel, Field


class ProviderConfig(BaseModel):
    base_url: str = Field(pattern=r"^https?://[^/?#]+(/[^?#]*)?$")
    secret_id: str = Field(min_length=1)
    timeout_s: float = Field(default=10, gt=0, le=60)


def provider_config(prefix: str, default_base_url: str) -> ProviderConfig:
    """Read `<PREFIX>_BASE_URL`, `<PREFIX>_SECRET_ID` and `PROVIDER_TIMEOUT_S`."""
    return ProviderConfig.model_validate(
        {
            "base_url": os.environ.get(f"{prefix}_BASE_URL") or default_base_url,
            "secret_id": os.environ.get(f"{prefix}_SECRET_ID", ""),
            "timeout_s": os.environ.get("PROVIDER_TIMEOUT_S") or 10,
        }
    )
