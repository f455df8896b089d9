"""How a batch's events are cut into PutEvents calls: at most 10 entries and 256 KB (UTF-8 bytes) a call, in order."""

from __future__ import annotations

from sharelink.results import Outcome, calls


def queued(detail: str) -> tuple[Outcome, None]:
    entry = {"Source": "sharelink", "DetailType": "Share Created", "Detail": detail, "EventBusName": "default"}
    return Outcome(f"results/123pan/{len(detail)}.json", "created", entry), None


def sizes(entries: list) -> list[int]:
    return [len(call) for call in calls(entries)]


def test_a_call_carries_ten_entries_at_most():
    assert sizes([queued("{}")] * 12) == [10, 2]


def test_a_call_carries_256_kb_at_most():
    assert sizes([queued("x" * 100 * 1024)] * 5) == [2, 2, 1]


def test_the_size_of_an_entry_is_counted_in_utf8_bytes():
    assert sizes([queued("季" * 50 * 1024)] * 2) == [1, 1]  # 150 KB each, though 50 K characters


def test_the_entries_keep_their_order():
    entries = [queued("x" * n) for n in range(1, 13)]

    assert [item for call in calls(entries) for item in call] == entries
