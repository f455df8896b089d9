"""The 123pan simulator's upload, folder and file endpoints, exercised over real HTTP on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from local.simulators.base import parse_multipart
from local.simulators.pan123 import (
    FOLDER_TAKEN,
    NAME_TAKEN,
    SLICE_MD5_MISMATCH,
    UPLOAD_FAILED,
    VERIFYING,
    VERIFYING_CODE,
    Pan123Simulator,
)

CREATE_PATH = "/upload/v2/file/create"
SLICE_PATH = "/upload/v2/file/slice"
COMPLETE_PATH = "/upload/v2/file/upload_complete"
MKDIR_PATH = "/upload/v1/file/mkdir"
LIST_PATH = "/api/v2/file/list"
DETAIL_PATH = "/api/v1/file/detail"
SHARE_PATH = "/api/v1/share/create"
DATA = b"0123456789"  # three slices of 4, 4 and 2 bytes with SLICE_SIZE
SLICE_SIZE = 4
# Secrets long enough that the leak check (tests/leaks.py) cannot find them in other tests' output by chance.
TWO_CLIENTS = {"a": "upload-secret-a", "b": "upload-secret-b"}
ITEM_FIELDS = {
    "fileId", "filename", "type", "size", "etag", "status", "parentFileId", "trashed", "createAt", "updateAt",
}  # fmt: skip


@pytest.fixture
def sim() -> Iterator[Pan123Simulator]:
    with Pan123Simulator(slice_size=SLICE_SIZE) as simulator:
        yield simulator


@pytest.fixture
def token(sim: Pan123Simulator) -> str:
    return sim.issue_token()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def envelope(response: requests.Response) -> dict[str, Any]:
    assert response.status_code == 200
    document = response.json()
    assert set(document) == {"code", "message", "data", "x-traceID"}
    if document["code"] != 0:
        assert document["data"] is None
    return document


def headers(token: str) -> dict[str, str]:
    return {"Platform": "open_platform", "Authorization": f"Bearer {token}"}


def post(sim: Pan123Simulator, token: str, path: str, body: Any) -> dict[str, Any]:
    return envelope(requests.post(sim.url + path, headers=headers(token), json=body, timeout=10))


def get(sim: Pan123Simulator, token: str, path: str, **params: Any) -> dict[str, Any]:
    return envelope(requests.get(sim.url + path, headers=headers(token), params=params, timeout=10))


def create(
    sim: Pan123Simulator, token: str, data: bytes = DATA, filename: str = "a.bin", parent: int = 0, **fields: Any
) -> dict[str, Any]:
    body = {"parentFileID": parent, "filename": filename, "etag": md5(data), "size": len(data), **fields}
    return post(sim, token, CREATE_PATH, body)


def send_slice(
    server: str, token: str, preupload_id: str, number: int, chunk: bytes, slice_md5: str | None = None, **kwargs: Any
) -> requests.Response:
    fields = {"preuploadID": preupload_id, "sliceNo": str(number), "sliceMD5": slice_md5 or md5(chunk)}
    return requests.post(
        server + SLICE_PATH,
        headers=headers(token),
        data=fields,
        files={"slice": ("blob", chunk)},
        timeout=kwargs.pop("timeout", 10),
        **kwargs,
    )


def slices(data: bytes, size: int = SLICE_SIZE) -> list[bytes]:
    return [data[start : start + size] for start in range(0, len(data), size)]


def complete(sim: Pan123Simulator, token: str, preupload_id: str) -> dict[str, Any]:
    return post(sim, token, COMPLETE_PATH, {"preuploadID": preupload_id})


def complete_polling(sim: Pan123Simulator, token: str, preupload_id: str) -> tuple[int, dict[str, Any]]:
    """(how many 20103 answers came first, the answer that ended the polling)."""
    polls = 0
    while (answer := complete(sim, token, preupload_id))["code"] == VERIFYING_CODE:
        polls += 1
        assert polls < 50
    return polls, answer


def upload(
    sim: Pan123Simulator, token: str, data: bytes = DATA, filename: str = "a.bin", **fields: Any
) -> dict[str, Any]:
    """The complete answer (or the create answer of an instant upload) of a whole upload."""
    created = create(sim, token, data, filename, **fields)
    assert created["code"] == 0, created
    if created["data"]["reuse"]:
        return created
    server, preupload_id = created["data"]["servers"][0], created["data"]["preuploadID"]
    for number, chunk in enumerate(slices(data, created["data"]["sliceSize"]), start=1):
        assert envelope(send_slice(server, token, preupload_id, number, chunk))["code"] == 0
    return complete_polling(sim, token, preupload_id)[1]


def wait_for(condition: Callable[[], object], timeout_s: float = 5) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("the simulator did not get there in time")
        time.sleep(0.02)


# --- the whole flow


def test_a_small_file_goes_up_in_three_slices(sim: Pan123Simulator, token: str) -> None:
    created = create(sim, token)
    assert (created["code"], created["message"]) == (0, "ok")
    data = created["data"]
    assert set(data) == {"fileID", "preuploadID", "reuse", "sliceSize", "servers"}
    assert (data["fileID"], data["reuse"], data["sliceSize"], data["servers"]) == (0, False, SLICE_SIZE, [sim.url])
    assert data["preuploadID"]
    parts = slices(DATA)
    assert [len(part) for part in parts] == [4, 4, 2]
    for number, chunk in enumerate(parts, start=1):
        answer = envelope(send_slice(data["servers"][0], token, data["preuploadID"], number, chunk))
        assert (answer["code"], answer["data"]) == (0, None)
    assert sim.slice_uploads == {(data["preuploadID"], number): 1 for number in (1, 2, 3)}
    polls, done = complete_polling(sim, token, data["preuploadID"])
    assert polls == 2  # verify_polls' default
    assert done["code"] == 0 and done["data"]["completed"] is True
    file_id = done["data"]["fileID"]
    assert file_id != 0
    found = sim.find("/a.bin")
    assert found is not None
    assert (found["fileId"], found["size"], found["etag"], found["type"], found["trashed"]) == (
        file_id,
        len(DATA),
        md5(DATA),
        0,
        0,
    )
    assert sim.content_of(file_id) == DATA
    assert file_id in sim.files
    share = post(sim, token, SHARE_PATH, {"shareName": "up", "shareExpire": 1, "fileIDList": str(file_id)})
    assert share["code"] == 0


def test_complete_answers_20103_verify_polls_times_then_the_same_file_id() -> None:
    with Pan123Simulator(slice_size=SLICE_SIZE, verify_polls=3) as sim:
        token = sim.issue_token()
        created = create(sim, token)["data"]
        for number, chunk in enumerate(slices(DATA), start=1):
            send_slice(sim.url, token, created["preuploadID"], number, chunk)
        answers = [complete(sim, token, created["preuploadID"]) for _ in range(5)]
    assert [(answer["code"], answer["message"]) for answer in answers[:3]] == [(20103, VERIFYING)] * 3
    assert VERIFYING == "文件正在校验中,请间隔1秒后再试"
    file_ids = {answer["data"]["fileID"] for answer in answers[3:]}
    assert len(file_ids) == 1 and 0 not in file_ids
    assert len(sim.files_in("/")) == 1  # completing twice makes one file


def test_verify_polls_zero_completes_at_once() -> None:
    with Pan123Simulator(slice_size=SLICE_SIZE, verify_polls=0) as sim:
        token = sim.issue_token()
        created = create(sim, token)["data"]
        for number, chunk in enumerate(slices(DATA), start=1):
            send_slice(sim.url, token, created["preuploadID"], number, chunk)
        assert complete(sim, token, created["preuploadID"])["data"]["completed"] is True


def test_slices_may_come_out_of_order_and_again(sim: Pan123Simulator, token: str) -> None:
    data = b"abcdefghijk"
    created = create(sim, token, data)["data"]
    parts = slices(data)
    pid = created["preuploadID"]
    for number in (3, 1, 2, 1):
        assert envelope(send_slice(sim.url, token, pid, number, parts[number - 1]))["code"] == 0
    assert sim.slice_uploads == {(pid, 1): 2, (pid, 2): 1, (pid, 3): 1}
    done = complete_polling(sim, token, pid)[1]
    assert sim.content_of(done["data"]["fileID"]) == data


def test_a_resent_slice_replaces_the_earlier_bytes(sim: Pan123Simulator, token: str) -> None:
    created = create(sim, token)["data"]
    pid = created["preuploadID"]
    send_slice(sim.url, token, pid, 1, b"XXXX")
    for number, chunk in enumerate(slices(DATA), start=1):
        send_slice(sim.url, token, pid, number, chunk)
    assert complete_polling(sim, token, pid)[1]["code"] == 0
    assert sim.slice_uploads[pid, 1] == 2


def test_slice_refusals_store_nothing(sim: Pan123Simulator, token: str) -> None:
    created = create(sim, token)["data"]
    pid = created["preuploadID"]

    def refusal(*args: Any, **kwargs: Any) -> tuple[int, str]:
        answer = envelope(send_slice(sim.url, token, *args, **kwargs))
        return answer["code"], answer["message"]

    assert refusal("no-such-upload", 1, b"0123") == (1, "preuploadID is unknown")
    assert refusal(pid, 0, b"0123")[0] == 1
    code, message = refusal(pid, 4, b"89")
    assert code == 1 and "from 1 to 3" in message
    assert refusal(pid, 1, b"012")[0] == 1  # a slice that is not the last must be sliceSize bytes
    assert refusal(pid, 3, b"8")[0] == 1  # the last one exactly the rest
    assert refusal(pid, 3, b"890")[0] == 1
    assert refusal(pid, 1, b"0123", slice_md5=md5(b"other")) == (1, SLICE_MD5_MISMATCH)
    assert refusal(pid, 1, b"0123", slice_md5=md5(b"0123").upper()) == (1, SLICE_MD5_MISMATCH)
    as_json = requests.post(
        sim.url + SLICE_PATH, headers=headers(token), json={"preuploadID": pid, "sliceNo": 1}, timeout=5
    )
    assert envelope(as_json)["code"] == 1
    assert sim.slice_uploads == {}
    answer = complete(sim, token, pid)
    assert (answer["code"], answer["message"]) == (1, "slices not uploaded yet: 1, 2, 3")


def test_another_clients_upload_is_unknown() -> None:
    with Pan123Simulator(slice_size=SLICE_SIZE, clients=TWO_CLIENTS) as sim:
        mine, theirs = sim.issue_token("a"), sim.issue_token("b")
        pid = create(sim, mine)["data"]["preuploadID"]
        assert envelope(send_slice(sim.url, theirs, pid, 1, b"0123"))["message"] == "preuploadID is unknown"
        assert complete(sim, theirs, pid)["message"] == "preuploadID is unknown"


def test_complete_names_the_missing_slices(sim: Pan123Simulator, token: str) -> None:
    pid = create(sim, token)["data"]["preuploadID"]
    send_slice(sim.url, token, pid, 2, b"4567")
    answer = complete(sim, token, pid)
    assert (answer["code"], answer["message"]) == (1, "slices not uploaded yet: 1, 3")
    assert complete(sim, token, "nope")["code"] == 1


def test_a_wrong_etag_ends_verification_in_upload_failed(sim: Pan123Simulator, token: str) -> None:
    created = post(
        sim, token, CREATE_PATH, {"parentFileID": 0, "filename": "bad.bin", "etag": md5(b"else"), "size": len(DATA)}
    )["data"]
    pid = created["preuploadID"]
    for number, chunk in enumerate(slices(DATA), start=1):
        assert envelope(send_slice(sim.url, token, pid, number, chunk))["code"] == 0
    polls, failed = complete_polling(sim, token, pid)
    assert (polls, failed["code"], failed["message"]) == (2, 1, UPLOAD_FAILED)
    assert UPLOAD_FAILED == "文件上传失败"
    assert complete(sim, token, pid)["message"] == UPLOAD_FAILED
    assert sim.files_in("/", trashed=True) == []
    assert create(sim, token)["data"]["reuse"] is False  # what was sent is not held either


def test_the_failure_code_is_a_switch(sim: Pan123Simulator, token: str) -> None:
    sim.upload_failed_code = 5
    created = post(sim, token, CREATE_PATH, {"parentFileID": 0, "filename": "x", "etag": md5(b"zz"), "size": 2})
    send_slice(sim.url, token, created["data"]["preuploadID"], 1, b"ab")
    assert complete_polling(sim, token, created["data"]["preuploadID"])[1]["code"] == 5


# --- instant upload


def test_content_already_held_is_an_instant_upload_for_any_client() -> None:
    with Pan123Simulator(slice_size=SLICE_SIZE, clients=TWO_CLIENTS) as sim:
        first = upload(sim, sim.issue_token("a"))["data"]["fileID"]
        again = create(sim, sim.issue_token("b"), filename="copy.bin")
        assert again["code"] == 0
        assert again["data"]["reuse"] is True and again["data"]["fileID"] not in (0, first)
        assert again["data"]["preuploadID"] == ""
        found = sim.find("/copy.bin", "b")
        assert found is not None and (found["etag"], found["size"]) == (md5(DATA), len(DATA))
        assert len(sim.uploads) == 1  # only the first upload sent slices


def test_hold_content_seeds_instant_uploads_and_the_size_must_match(sim: Pan123Simulator, token: str) -> None:
    data = b"held elsewhere"
    assert create(sim, token, data)["data"]["reuse"] is False
    sim.hold_content(md5(data), len(data))
    assert create(sim, token, data, filename="b.bin")["data"]["reuse"] is True
    other_size = {"parentFileID": 0, "filename": "c.bin", "etag": md5(data), "size": len(data) + 1}
    assert post(sim, token, CREATE_PATH, other_size)["data"]["reuse"] is False
    with pytest.raises(ValueError):
        sim.hold_content("ABC", 1)


def test_instant_upload_can_be_switched_off() -> None:
    with Pan123Simulator(slice_size=SLICE_SIZE, instant_upload=False) as sim:
        token = sim.issue_token()
        sim.hold_content(md5(DATA), len(DATA))
        assert create(sim, token)["data"]["reuse"] is False


def test_a_zero_byte_file_is_made_at_create(sim: Pan123Simulator, token: str) -> None:
    answer = create(sim, token, b"", filename="empty.txt")
    assert answer["data"]["reuse"] is True and answer["data"]["fileID"] != 0
    assert sim.content_of(answer["data"]["fileID"]) == b""
    wrong = post(sim, token, CREATE_PATH, {"parentFileID": 0, "filename": "e", "etag": md5(b"x"), "size": 0})
    assert wrong["code"] == 1 and "empty" in wrong["message"]


# --- create's checks


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        *[({"filename": f"a{char}b"}, "filename") for char in '"\\/:*?|><'],
        ({"filename": "x" * 256}, "filename"),
        ({"filename": "   "}, "filename"),
        ({"filename": ""}, "filename"),
        ({"filename": 7}, "filename"),
        ({"etag": md5(DATA).upper()}, "etag"),
        ({"etag": md5(DATA)[:31]}, "etag"),
        ({"etag": None}, "etag"),
        ({"size": -1}, "size"),
        ({"size": "10"}, "size"),
        ({"size": 10 * 1024**3 + 1}, "10 GiB"),
        ({"parentFileID": -1}, "parentFileID"),
        ({"parentFileID": "0"}, "parentFileID"),
        ({"duplicate": 3}, "duplicate"),
        ({"duplicate": True}, "duplicate"),
        ({"containDir": "yes"}, "containDir"),
    ],
)
def test_create_refuses_invalid_fields(sim: Pan123Simulator, token: str, fields: dict[str, Any], named: str) -> None:
    body = {"parentFileID": 0, "filename": "a.bin", "etag": md5(DATA), "size": len(DATA), **fields}
    answer = post(sim, token, CREATE_PATH, body)
    assert answer["code"] == 1 and named in answer["message"]
    assert sim.uploads == {}


def test_create_takes_names_of_255_characters_and_10_gib(sim: Pan123Simulator, token: str) -> None:
    assert create(sim, token, filename="x" * 255)["code"] == 0
    body = {"parentFileID": 0, "filename": "big.iso", "etag": md5(b"big"), "size": 10 * 1024**3}
    answer = post(sim, token, CREATE_PATH, body)
    assert answer["code"] == 0 and answer["data"]["sliceSize"] == SLICE_SIZE


def test_create_needs_an_existing_folder_of_the_client(sim: Pan123Simulator, token: str) -> None:
    assert create(sim, token, parent=123)["code"] == 5066
    file_id = upload(sim, token)["data"]["fileID"]
    answer = create(sim, token, filename="b.bin", parent=file_id)
    assert answer["code"] == 1 and "not a folder" in answer["message"]
    folder = sim.make_folder("/f")
    assert create(sim, token, filename="b.bin", parent=folder)["code"] == 0
    sim.trash(folder)
    assert create(sim, token, filename="c.bin", parent=folder)["code"] == 5066


def test_create_and_upload_calls_need_platform_and_token(sim: Pan123Simulator, token: str) -> None:
    body = {"parentFileID": 0, "filename": "a.bin", "etag": md5(DATA), "size": len(DATA)}
    no_platform = requests.post(
        sim.url + CREATE_PATH, headers={"Authorization": f"Bearer {token}"}, json=body, timeout=5
    )
    assert envelope(no_platform)["code"] == 1
    for path in (CREATE_PATH, COMPLETE_PATH, MKDIR_PATH):
        assert post(sim, "not-a-token", path, body)["code"] == 401
    assert get(sim, "not-a-token", LIST_PATH, parentFileId=0, limit=1)["code"] == 401
    pid = create(sim, token)["data"]["preuploadID"]
    assert envelope(send_slice(sim.url, "not-a-token", pid, 1, b"0123"))["code"] == 401


def test_contain_dir_makes_the_folders_of_the_path(sim: Pan123Simulator, token: str) -> None:
    done = upload(sim, token, filename="/x/y/z.bin", containDir=True)
    found = sim.find("/x/y/z.bin")
    assert found is not None and found["fileId"] == done["data"]["fileID"]
    assert [item["filename"] for item in sim.files_in("/x")] == ["y"]
    sim.contain_dir_creates_folders = False
    assert create(sim, token, filename="/x/q.bin", containDir=True)["code"] == 1


# --- name clashes


def test_a_name_clash_without_duplicate_is_refused(sim: Pan123Simulator, token: str) -> None:
    upload(sim, token)
    answer = create(sim, token, b"other bytes")
    assert (answer["code"], answer["message"]) == (1, NAME_TAKEN)
    assert NAME_TAKEN == "文件名重复"


def test_duplicate_1_keeps_both_with_a_numbered_name(sim: Pan123Simulator, token: str) -> None:
    upload(sim, token, filename="a.txt")
    upload(sim, token, b"second", filename="a.txt", duplicate=1)
    upload(sim, token, b"third", filename="a.txt", duplicate=1)
    upload(sim, token, b"fourth", filename="noext", duplicate=1)
    upload(sim, token, b"fifth", filename="noext", duplicate=1)
    names = [item["filename"] for item in sim.files_in("/")]
    assert names == ["a.txt", "a(1).txt", "a(2).txt", "noext", "noext(1)"]


def test_duplicate_2_overwrites_and_trashes_the_old_file(sim: Pan123Simulator, token: str) -> None:
    old = upload(sim, token, filename="a.txt")["data"]["fileID"]
    new = upload(sim, token, b"newer", filename="a.txt", duplicate=2)["data"]["fileID"]
    items = {item["fileId"]: item for item in sim.files_in("/", trashed=True)}
    assert (items[old]["trashed"], items[new]["trashed"]) == (1, 0)
    found = sim.find("/a.txt")
    assert found is not None and found["fileId"] == new


def test_the_policy_without_duplicate_is_a_switch(sim: Pan123Simulator, token: str) -> None:
    sim.default_duplicate = 1
    upload(sim, token)
    assert upload(sim, token, b"other")["code"] == 0
    assert [item["filename"] for item in sim.files_in("/")] == ["a.bin", "a(1).bin"]


def test_the_name_policy_applies_again_at_completion(sim: Pan123Simulator, token: str) -> None:
    pid = create(sim, token, filename="late.bin")["data"]["preuploadID"]
    upload(sim, token, b"quicker", filename="late.bin")
    for number, chunk in enumerate(slices(DATA), start=1):
        send_slice(sim.url, token, pid, number, chunk)
    assert complete_polling(sim, token, pid)[1]["message"] == NAME_TAKEN


# --- folders, listing, detail


def test_mkdir_refuses_a_folder_name_taken_until_trashed(sim: Pan123Simulator, token: str) -> None:
    made = post(sim, token, MKDIR_PATH, {"name": "docs", "parentID": 0})
    assert made["code"] == 0 and set(made["data"]) == {"dirID"}
    clash = post(sim, token, MKDIR_PATH, {"name": "docs", "parentID": 0})
    assert (clash["code"], clash["message"]) == (1, FOLDER_TAKEN)
    assert FOLDER_TAKEN == "该目录下已经有同名文件夹,无法进行创建"
    inner = post(sim, token, MKDIR_PATH, {"name": "docs", "parentID": made["data"]["dirID"]})
    assert inner["code"] == 0
    sim.trash(made["data"]["dirID"])
    again = post(sim, token, MKDIR_PATH, {"name": "docs", "parentID": 0})
    assert again["code"] == 0 and again["data"]["dirID"] != made["data"]["dirID"]


def test_mkdir_checks_its_fields(sim: Pan123Simulator, token: str) -> None:
    assert post(sim, token, MKDIR_PATH, {"name": "a/b", "parentID": 0})["code"] == 1
    assert post(sim, token, MKDIR_PATH, {"name": " ", "parentID": 0})["code"] == 1
    assert post(sim, token, MKDIR_PATH, {"name": "a"})["code"] == 1
    assert post(sim, token, MKDIR_PATH, {"name": "a", "parentID": 999})["code"] == 5066
    upload(sim, token, filename="same")
    assert post(sim, token, MKDIR_PATH, {"name": "same", "parentID": 0})["code"] == 0  # a file does not clash


def test_list_shows_trashed_entries_with_their_fields(sim: Pan123Simulator, token: str) -> None:
    folder = post(sim, token, MKDIR_PATH, {"name": "f", "parentID": 0})["data"]["dirID"]
    kept = upload(sim, token, filename="kept.bin")["data"]["fileID"]
    binned = upload(sim, token, b"binned", filename="binned.bin")["data"]["fileID"]
    sim.trash(binned)
    page = get(sim, token, LIST_PATH, parentFileId=0, limit=100)["data"]
    assert page["lastFileId"] == -1
    items = page["fileList"]
    assert all(set(item) == ITEM_FIELDS for item in items)
    assert [(item["fileId"], item["type"], item["trashed"]) for item in items] == [
        (folder, 1, 0),
        (kept, 0, 0),
        (binned, 0, 1),
    ]
    assert (items[0]["size"], items[0]["etag"], items[0]["parentFileId"]) == (0, "", 0)
    assert (items[1]["size"], items[1]["etag"], items[1]["status"]) == (len(DATA), md5(DATA), 0)
    assert len(items[1]["createAt"]) == len("2025-02-25 10:12:45")
    assert [item["fileId"] for item in sim.files_in("/")] == [folder, kept]


def test_list_pages_by_last_file_id(sim: Pan123Simulator, token: str) -> None:
    ids = [post(sim, token, MKDIR_PATH, {"name": f"d{n}", "parentID": 0})["data"]["dirID"] for n in range(5)]
    first = get(sim, token, LIST_PATH, parentFileId=0, limit=2)["data"]
    assert ([item["fileId"] for item in first["fileList"]], first["lastFileId"]) == (ids[:2], ids[1])
    rest = get(sim, token, LIST_PATH, parentFileId=0, limit=3, lastFileId=ids[1])["data"]
    assert ([item["fileId"] for item in rest["fileList"]], rest["lastFileId"]) == (ids[2:], -1)
    assert get(sim, token, LIST_PATH, parentFileId=12345, limit=5)["data"] == {"lastFileId": -1, "fileList": []}
    for bad in ({"parentFileId": 0, "limit": 101}, {"parentFileId": 0}, {"limit": 5}, {"parentFileId": 0, "limit": 0}):
        assert get(sim, token, LIST_PATH, **bad)["code"] == 1


def test_lists_are_per_client() -> None:
    with Pan123Simulator(clients=TWO_CLIENTS) as sim:
        post(sim, sim.issue_token("a"), MKDIR_PATH, {"name": "mine", "parentID": 0})
        assert get(sim, sim.issue_token("b"), LIST_PATH, parentFileId=0, limit=10)["data"]["fileList"] == []


def test_a_fresh_folder_lists_late_when_eventually_consistent() -> None:
    with Pan123Simulator(list_lag=2) as sim:
        token = sim.issue_token()
        folder = post(sim, token, MKDIR_PATH, {"name": "new", "parentID": 0})["data"]["dirID"]
        listed = [
            [item["fileId"] for item in get(sim, token, LIST_PATH, parentFileId=0, limit=10)["data"]["fileList"]]
            for _ in range(3)
        ]
        assert listed == [[], [], [folder]]
        assert post(sim, token, MKDIR_PATH, {"name": "new", "parentID": 0})["message"] == FOLDER_TAKEN


def test_folders_list_at_once_by_default(sim: Pan123Simulator, token: str) -> None:
    folder = post(sim, token, MKDIR_PATH, {"name": "new", "parentID": 0})["data"]["dirID"]
    assert get(sim, token, LIST_PATH, parentFileId=0, limit=10)["data"]["fileList"][0]["fileId"] == folder


def test_detail_answers_a_files_fields(sim: Pan123Simulator, token: str) -> None:
    folder = sim.make_folder("/in")
    file_id = upload(sim, token, parent=folder)["data"]["fileID"]
    detail = get(sim, token, DETAIL_PATH, fileID=file_id)
    assert detail["code"] == 0
    assert {name: detail["data"][name] for name in ("fileID", "filename", "type", "size", "etag", "parentFileID")} == {
        "fileID": file_id,
        "filename": "a.bin",
        "type": 0,
        "size": len(DATA),
        "etag": md5(DATA),
        "parentFileID": folder,
    }
    assert (detail["data"]["trashed"], detail["data"]["status"]) == (0, 0)
    sim.trash(file_id)
    assert get(sim, token, DETAIL_PATH, fileID=file_id)["data"]["trashed"] == 1
    assert get(sim, token, DETAIL_PATH, fileID=99999999)["code"] == 5066


def test_another_clients_files_are_not_found_nor_shared() -> None:
    with Pan123Simulator(slice_size=SLICE_SIZE, clients=TWO_CLIENTS) as sim:
        file_id = upload(sim, sim.issue_token("a"))["data"]["fileID"]
        theirs = sim.issue_token("b")
        assert get(sim, theirs, DETAIL_PATH, fileID=file_id)["code"] == 5066
        share = {"shareName": "x", "shareExpire": 1, "fileIDList": str(file_id)}
        assert post(sim, theirs, SHARE_PATH, share)["code"] == 5066


# --- rate limits, key spelling, faults, recording, memory


def test_upload_endpoints_are_rate_limited_per_client_when_configured() -> None:
    with Pan123Simulator(upload_qps={"create": 1, "file/list": 2}) as sim:
        sim.clock.freeze()
        token = sim.issue_token()
        codes = [create(sim, token, filename=f"{n}.bin")["code"] for n in range(2)]
        assert codes == [0, 429]
        assert create(sim, token, filename="x")["message"] == "请求太频繁"
        assert [get(sim, token, LIST_PATH, parentFileId=0, limit=1)["code"] for _ in range(3)] == [0, 0, 429]
        assert all(post(sim, token, MKDIR_PATH, {"name": f"d{n}", "parentID": 0})["code"] == 0 for n in range(5))
        sim.clock.advance(1)
        assert create(sim, token, filename="y")["code"] == 0
    with pytest.raises(ValueError):
        Pan123Simulator(upload_qps={"upload": 1})


def test_upload_keys_match_without_regard_to_case(sim: Pan123Simulator, token: str) -> None:
    body = {"parentfileid": 0, "FILENAME": "a.bin", "Etag": md5(DATA), "size": len(DATA)}
    pid = post(sim, token, CREATE_PATH, body)["data"]["preuploadID"]
    for number, chunk in enumerate(slices(DATA), start=1):
        fields = {"preuploadid": pid, "sliceno": str(number), "slicemd5": md5(chunk)}
        response = requests.post(
            sim.url + SLICE_PATH, headers=headers(token), data=fields, files={"SLICE": ("b", chunk)}, timeout=5
        )
        assert envelope(response)["code"] == 0
    file_id = complete_polling(sim, token, pid)[1]["data"]["fileID"]
    assert get(sim, token, LIST_PATH, parentfileid=0, LIMIT=5)["data"]["fileList"][0]["fileId"] == file_id
    assert get(sim, token, DETAIL_PATH, fileid=file_id)["code"] == 0
    assert post(sim, token, MKDIR_PATH, {"NAME": "d", "parentid": 0})["code"] == 0


def test_upload_keys_are_case_sensitive_when_switched_off() -> None:
    with Pan123Simulator(keys_ignore_case=False) as sim:
        token = sim.issue_token()
        body = {"parentFileId": 0, "filename": "a.bin", "etag": md5(DATA), "size": len(DATA)}
        assert "parentFileID" in post(sim, token, CREATE_PATH, body)["message"]
        assert get(sim, token, LIST_PATH, parentFileId=0, limit=5)["code"] == 0
        assert get(sim, token, LIST_PATH, parentFileID=0, limit=5)["code"] == 1


def test_http500_on_a_slice_stores_nothing(sim: Pan123Simulator, token: str) -> None:
    pid = create(sim, token)["data"]["preuploadID"]
    sim.faults.add("http500", method="POST", path=SLICE_PATH)
    response = send_slice(sim.url, token, pid, 1, b"0123")
    assert response.status_code == 500
    assert sim.slice_uploads == {}
    assert envelope(send_slice(sim.url, token, pid, 1, b"0123"))["code"] == 0
    assert sim.slice_uploads == {(pid, 1): 1}
    assert [call.path for call in sim.requests].count(SLICE_PATH) == 2


def test_close_on_a_slice_drops_it_and_close_after_stores_it(sim: Pan123Simulator, token: str) -> None:
    pid = create(sim, token)["data"]["preuploadID"]
    sim.faults.add("close", path=SLICE_PATH)
    with pytest.raises(requests.ConnectionError):
        send_slice(sim.url, token, pid, 1, b"0123")
    assert sim.slice_uploads == {}
    sim.faults.add("close_after", path=SLICE_PATH)
    with pytest.raises(requests.ConnectionError):
        send_slice(sim.url, token, pid, 1, b"0123")
    assert sim.slice_uploads == {(pid, 1): 1}


def test_a_timed_out_slice_is_stored_after_the_delay(sim: Pan123Simulator, token: str) -> None:
    pid = create(sim, token)["data"]["preuploadID"]
    sim.faults.add("timeout", path=SLICE_PATH, delay=0.5)
    with pytest.raises(requests.Timeout):
        send_slice(sim.url, token, pid, 1, b"0123", timeout=0.1)
    assert sim.slice_uploads == {}
    wait_for(lambda: sim.slice_uploads == {(pid, 1): 1})


def test_slices_are_recorded_without_their_bytes(sim: Pan123Simulator, token: str) -> None:
    pid = create(sim, token)["data"]["preuploadID"]
    send_slice(sim.url, token, pid, 1, b"0123")
    recorded = requests.get(sim.url + "/__sim/requests", timeout=5).json()
    assert recorded[-1]["body"] == {
        "preuploadID": pid,
        "sliceNo": "1",
        "sliceMD5": md5(b"0123"),
        "slice": {"filename": "blob", "size": 4, "md5": md5(b"0123")},
    }
    assert sim.requests[-1].body["slice"]["size"] == 4


def test_a_larger_file_keeps_only_md5_and_size_and_its_spool_goes() -> None:
    data = os.urandom(3 * 1024 * 1024 + 5)
    with Pan123Simulator(slice_size=1024 * 1024) as sim:
        token = sim.issue_token()
        created = create(sim, token, data)["data"]
        pid = created["preuploadID"]
        for number, chunk in enumerate(slices(data, created["sliceSize"]), start=1):
            assert envelope(send_slice(sim.url, token, pid, number, chunk, timeout=30))["code"] == 0
        spool = sim.uploads[pid].spool
        assert os.path.getsize(spool) == len(data)
        file_id = complete_polling(sim, token, pid)[1]["data"]["fileID"]
        assert not os.path.exists(spool)
        assert sim.content_of(file_id) is None  # over small_content_limit
        assert sim.contents == {(md5(data), len(data)): None}
        found = sim.find("/a.bin")
        assert found is not None and found["etag"] == md5(data)
        assert all(len(json.dumps(call.body)) < 1000 for call in sim.requests)
        spool_dir = os.path.dirname(spool)
    assert not os.path.exists(spool_dir)  # stop() removes the spool directory


def test_reset_forgets_uploads_files_and_the_spool(sim: Pan123Simulator, token: str) -> None:
    file_id = upload(sim, token)["data"]["fileID"]
    pid = create(sim, token, b"pending", filename="p.bin")["data"]["preuploadID"]
    send_slice(sim.url, token, pid, 1, b"pend")
    spool_dir = os.path.dirname(sim.uploads[pid].spool)
    assert requests.post(sim.url + "/__sim/reset", timeout=5).status_code == 204
    assert (sim.entries, sim.uploads, sim.slice_uploads, sim.contents) == ({}, {}, {}, {})
    assert file_id not in sim.files and 14713526 in sim.files
    assert not os.path.exists(spool_dir)
    token = sim.issue_token()
    assert create(sim, token)["data"]["reuse"] is False


def test_helpers_find_folders_and_files(sim: Pan123Simulator, token: str) -> None:
    folder = sim.make_folder("/a/b")
    assert sim.make_folder("/a/b") == folder
    upload(sim, token, parent=folder)
    assert sim.find("/a/b/a.bin") is not None
    assert sim.find("/a/x") is None and sim.find("/a/b/a.bin/z") is None
    assert [item["filename"] for item in sim.files_in("/a")] == ["b"]
    with pytest.raises(ValueError):
        sim.files_in("/nowhere")
    with pytest.raises(ValueError):
        sim.make_folder("/x", client_id="nobody")


# --- multipart parsing (base.py)


def test_multipart_parsing_keeps_repeated_fields_and_encoded_names() -> None:
    body = (
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="a"\r\n\r\n'
        b"1\r\n"
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="a"\r\n\r\n'
        b"2\r\n"
        b"--XyZ\r\n"
        b"Content-Disposition: form-data; name=\"f\"; filename*=UTF-8''%E6%8A%A5%E5%91%8A.docx\r\n"
        b"Content-Type: application/octet-stream\r\n\r\n"
        b"\x00\xff\r\n"
        b"--XyZ--\r\n"
    )
    form = parse_multipart(body, 'multipart/form-data; boundary="XyZ"')
    assert [(part.name, part.filename, part.data) for part in form.parts] == [
        ("a", None, b"1"),
        ("a", None, b"2"),
        ("f", "报告.docx", b"\x00\xff"),
    ]
    assert form.summary() == {"a": ["1", "2"], "f": {"filename": "报告.docx", "size": 2, "md5": md5(b"\x00\xff")}}


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--b--', "multipart/form-data"),
        (b"nothing here", "multipart/form-data; boundary=b"),
        (b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n1', "multipart/form-data; boundary=b"),
        (b"--b\r\nX-Other: 1\r\n\r\n1\r\n--b--", "multipart/form-data; boundary=b"),
    ],
)
def test_a_malformed_multipart_body_is_recorded_as_such(
    sim: Pan123Simulator, token: str, body: bytes, content_type: str
) -> None:
    with pytest.raises(ValueError):
        parse_multipart(body, content_type)
    response = requests.post(
        sim.url + SLICE_PATH, headers={**headers(token), "Content-Type": content_type}, data=body, timeout=5
    )
    assert envelope(response)["message"] == "the slice must be sent as multipart/form-data"
    assert set(sim.requests[-1].body) == {"multipart_error", "size"}
