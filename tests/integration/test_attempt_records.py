"""Attempt records and claims in the idempotency table of the emulator, with a provider that lists what it is told."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from sharelink.attempts import Attempts
from sharelink.errors import ProviderTimeout
from sharelink.providers.base import Attempt, RequestModel
from sharelink.share import Share
from tests.conftest import FUNCTION_ENV

SHARE = Share(provider="test", share_id="41", share_key="k", url="https://example.test/s/k", file_ids=["1"])


class Request(RequestModel):
    name: str


class LostAnswers:
    """A provider whose creates time out after making SHARE, and whose list shows SHARE on two pages."""

    name: ClassVar[str] = "test"
    create_request: ClassVar[type[RequestModel]] = Request

    def create_share(self, request: Request) -> Share:
        raise ProviderTimeout("test did not answer", provider=self.name)

    def before_create(self, request: Request) -> dict[str, Any]:
        return {}

    def find_created(self, request: Request, attempt: Attempt) -> list[Share]:
        return [SHARE, SHARE]


def test_a_share_listed_twice_is_one_candidate_adopted_once(fresh_aws):
    dynamodb = fresh_aws.client("dynamodb")
    table = FUNCTION_ENV["IDEMPOTENCY_TABLE"]
    attempts, provider, request = Attempts(dynamodb, table), LostAnswers(), Request(name="report")
    with pytest.raises(ProviderTimeout):
        attempts.create_once("request-1", request, provider)

    assert attempts.create_once("request-1", request, provider) == SHARE
    claim = dynamodb.get_item(TableName=table, Key={"id": {"S": "claim#test#41"}})["Item"]
    assert claim["attempt"]["S"].startswith("attempt#test#")
