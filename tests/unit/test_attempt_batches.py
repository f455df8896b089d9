"""The attempt records' batch reads and writes: what DynamoDB leaves unprocessed is sent again, then given up on."""

from __future__ import annotations

from typing import Any

import pytest

from sharelink.attempts import BATCH_PAUSES_S, _until_processed
from sharelink.errors import StorageUnavailable

PUTS = {"table": [{"PutRequest": {"Item": {"id": {"S": "a"}}}}, {"PutRequest": {"Item": {"id": {"S": "b"}}}}]}


def test_what_the_table_left_unprocessed_is_sent_again_until_none_is_left():
    sent: list[dict[str, Any]] = []
    answers = [{"table": PUTS["table"][1:]}, {}]

    def send(pending: dict[str, Any]) -> dict[str, Any]:
        sent.append(pending)
        return answers[len(sent) - 1]

    _until_processed(send, PUTS)

    assert sent == [PUTS, {"table": PUTS["table"][1:]}]


def test_a_table_that_keeps_leaving_items_unprocessed_fails_as_storage_unavailable():
    sent: list[dict[str, Any]] = []

    def send(pending: dict[str, Any]) -> dict[str, Any]:
        sent.append(pending)
        return pending

    with pytest.raises(StorageUnavailable) as raised:
        _until_processed(send, PUTS)

    assert len(sent) == len(BATCH_PAUSES_S) + 1
    assert raised.value.transient
