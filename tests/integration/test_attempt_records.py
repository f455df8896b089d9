"""Attempt records and claims in the idempotency table of the emulator, with a provider that lists what it is told."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar

import pytest

from local.template import Template
from sharelink.attempts import Attempts
from sharelink.errors import ProviderTimeout
from sharelink.providers.base import Attempt, RequestModel
from sharelink.share import Share
from tests.conftest import FUNCTION_ENV

ROOT = Path(__file__).resolve().parents[2]

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


def test_an_attempt_record_outlives_the_last_receive_of_its_storage_request(fresh_aws):
    """A create that timed out is reconciled at the request's next receive, however late: each of the queue's receives
    may come up to SQS's 12 hours of visibility after the one before (a KDocs quota waits for midnight)."""
    dynamodb = fresh_aws.client("dynamodb")
    table = FUNCTION_ENV["IDEMPOTENCY_TABLE"]
    with pytest.raises(ProviderTimeout):
        Attempts(dynamodb, table).create_once("request-1", Request(name="report"), LostAnswers())
    (record,) = [item for item in dynamodb.scan(TableName=table)["Items"] if item["id"]["S"].startswith("attempt#")]

    receives = max(
        queue["Properties"]["RedrivePolicy"]["maxReceiveCount"]
        for logical_id, queue in Template(ROOT / "template.yaml").of_type("AWS::SQS::Queue").items()
        if logical_id.endswith("RequestsQueue")
    )
    assert int(record["expiration"]["N"]) - time.time() >= receives * 12 * 3600
