"""Uploading S3 object versions to 123pan (V2 flow), step by step as the durable flow calls them, against the 123pan
simulator over HTTP and a versioned bucket in moto."""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter

import pytest
import requests

from local.simulators.pan123 import Pan123Simulator
from sharelink.aws import session as new_session
from sharelink.errors import ProviderRejected, UploadRejected
from sharelink.providers.pan123 import CreateShareRequest, Pan123
from sharelink.secrets import ManagerSecrets
from sharelink.tokens import SecretTokens
from sharelink.transport import HttpTransport
from sharelink.uploads import StoredObject
from sharelink.uploads import pan123 as uploads_module
from sharelink.uploads.pan123 import Pan123Uploads
from tests.conftest import PAN123_SECRET, versioned_bucket

BUCKET = "sharelink-test-uploads"
SLICE = 1024
CREATE_PATH = "/upload/v2/file/create"
SLICE_PATH = "/upload/v2/file/slice"
COMPLETE_PATH = "/upload/v2/file/upload_complete"
MKDIR_PATH = "/upload/v1/file/mkdir"
LIST_PATH = "/api/v2/file/list"
EMPTY_MD5 = hashlib.md5(b"").hexdigest()


@pytest.fixture
def s3(fresh_aws):
    return versioned_bucket(fresh_aws, BUCKET)


@pytest.fixture
def pan123(pan123_sim) -> Pan123:
    return Pan123(
        HttpTransport(pan123_sim.url, provider="123pan", timeout_s=2),
        SecretTokens(PAN123_SECRET, ManagerSecrets(new_session()), provider="123pan"),
    )


@pytest.fixture
def uploads(pan123, s3) -> Pan123Uploads:
    return Pan123Uploads(pan123, s3, slice_timeout_s=2)


@pytest.fixture
def small_slices(pan123_sim, monkeypatch):
    """The provider asks for slices of SLICE bytes, so that a few KiB make several slices."""
    monkeypatch.setattr(pan123_sim, "slice_size", SLICE)


@pytest.fixture(autouse=True)
def quick_relists(monkeypatch):
    monkeypatch.setattr(uploads_module, "CLASH_RELIST_PAUSES_S", (0.0, 0.05, 0.05, 0.05))


def put(s3, data: bytes, key: str = "uploads/123pan/reports/q3.bin") -> StoredObject:
    version = s3.put_object(Bucket=BUCKET, Key=key, Body=data)["VersionId"]
    return StoredObject(BUCKET, key, version, len(data))


def calls(sim, path: str) -> list:
    return [call for call in sim.requests if call.path == path]


def content(size: int) -> bytes:
    return bytes(index * 7 % 251 for index in range(size))


def upload(uploads: Pan123Uploads, obj: StoredObject, filename: str = "q3.bin", slice_size: int = SLICE):
    """Every step, as plain data through JSON (as a checkpoint keeps it): (created, file id)."""
    digest = roundtrip(uploads.digest(obj, slice_size))
    parent = roundtrip(uploads.folder(["reports"]))
    created = roundtrip(uploads.create(parent, filename, digest, 1))
    if not created["reuse"]:
        count = -(-obj.size // created["slice_size"])
        assert roundtrip(uploads.upload_slices(obj, created, digest, list(range(1, count + 1)))) == list(
            range(1, count + 1)
        )
    for _ in range(10):
        if file_id := roundtrip(uploads.complete(created)):
            return created, file_id
    pytest.fail("complete never finished")


def roundtrip(value):
    return json.loads(json.dumps(value))


@pytest.mark.parametrize(
    ("size", "slices"),
    [(1024, 1), (SLICE, 1), (SLICE + 1, 2), (4 * SLICE + 5, 5)],
    ids=["1KiB", "exactly-one-slice", "one-slice-plus-one-byte", "five-slices"],
)
def test_the_bytes_arrive_whole_in_slices_of_the_providers_size(uploads, s3, pan123_sim, small_slices, size, slices):
    data = content(size)
    obj = put(s3, data)

    created, file_id = upload(uploads, obj)

    assert created["slice_size"] == SLICE
    sent = calls(pan123_sim, SLICE_PATH)
    assert sorted(int(call.body["sliceNo"]) for call in sent) == list(range(1, slices + 1))
    assert {call.body["slice"]["size"] for call in sent if call.body["sliceNo"] == str(slices)} == {
        size - (slices - 1) * SLICE
    }
    assert pan123_sim.content_of(file_id) == data
    assert pan123_sim.find("/sharelink/reports/q3.bin")["fileId"] == file_id


def test_what_goes_out_is_what_upload_md_says(uploads, s3, pan123_sim, small_slices):
    data = content(SLICE + 1)
    obj = put(s3, data)

    created, _ = upload(uploads, obj)

    (create,) = calls(pan123_sim, CREATE_PATH)
    assert create.body == {
        "parentFileID": pan123_sim.find("/sharelink/reports")["fileId"],
        "filename": "q3.bin",
        "etag": hashlib.md5(data).hexdigest(),
        "size": SLICE + 1,
        "duplicate": 1,
    }
    first = calls(pan123_sim, SLICE_PATH)[0]
    assert first.headers["Platform"] == "open_platform"
    assert first.headers["Authorization"].startswith("Bearer ")
    assert first.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert "Transfer-Encoding" not in first.headers
    number = int(first.body["sliceNo"])
    piece = data[(number - 1) * SLICE : number * SLICE]
    assert list(first.body) == ["preuploadID", "sliceNo", "sliceMD5", "slice"]
    assert first.body["preuploadID"] == created["preupload_id"]
    assert first.body["sliceMD5"] == hashlib.md5(piece).hexdigest()
    assert first.body["slice"]["md5"] == hashlib.md5(piece).hexdigest()
    assert calls(pan123_sim, COMPLETE_PATH)[0].body == {"preuploadID": created["preupload_id"]}


def test_an_empty_file_is_an_instant_upload(uploads, s3, pan123_sim):
    obj = put(s3, b"", "uploads/123pan/reports/empty.txt")

    assert uploads.digest(obj) == {"md5": EMPTY_MD5, "size": 0, "slice_size": 16 * 1024**2, "slice_md5s": []}
    created, file_id = upload(uploads, obj, "empty.txt")

    assert created["reuse"] is True
    assert created["file_id"] == file_id
    assert calls(pan123_sim, SLICE_PATH) == calls(pan123_sim, COMPLETE_PATH) == []
    assert pan123_sim.find("/sharelink/reports/empty.txt")["size"] == 0


def test_content_the_provider_holds_is_an_instant_upload_with_nothing_sent(uploads, s3, pan123_sim):
    data = content(3000)
    pan123_sim.hold_content(hashlib.md5(data).hexdigest(), len(data))
    obj = put(s3, data)

    created, file_id = upload(uploads, obj)

    assert created == {"file_id": file_id, "preupload_id": "", "reuse": True, "slice_size": 0, "server": ""}
    assert calls(pan123_sim, SLICE_PATH) == calls(pan123_sim, COMPLETE_PATH) == []


def test_a_slice_answered_5xx_is_sent_again_alone(uploads, s3, pan123_sim, small_slices):
    pan123_sim.faults.add("http500", method="POST", path=SLICE_PATH)
    data = content(4 * SLICE)

    _, file_id = upload(uploads, put(s3, data))

    numbers = Counter(call.body["sliceNo"] for call in calls(pan123_sim, SLICE_PATH))
    assert sorted(numbers.values()) == [1, 1, 1, 2]
    assert set(pan123_sim.slice_uploads.values()) == {1}
    assert pan123_sim.content_of(file_id) == data


@pytest.mark.parametrize("fault", ["http429", "close"])
def test_a_slice_is_resent_after_a_429_or_a_dropped_connection(uploads, s3, pan123_sim, small_slices, fault):
    pan123_sim.faults.add(fault, method="POST", path=SLICE_PATH)
    data = content(2 * SLICE)

    _, file_id = upload(uploads, put(s3, data))

    assert len(calls(pan123_sim, SLICE_PATH)) == 3
    assert pan123_sim.content_of(file_id) == data


def test_a_slice_that_timed_out_is_resent_and_the_late_first_one_changes_nothing(uploads, s3, pan123_sim, small_slices):
    pan123_sim.faults.add("timeout", method="POST", path=SLICE_PATH, delay=2.5)
    data = content(2 * SLICE)

    _, file_id = upload(uploads, put(s3, data))
    deadline = time.monotonic() + 5
    while sum(pan123_sim.slice_uploads.values()) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)

    assert len(calls(pan123_sim, SLICE_PATH)) == 3
    assert sum(pan123_sim.slice_uploads.values()) == 3
    assert pan123_sim.content_of(file_id) == data


def test_a_slice_whose_token_is_refused_is_sent_again_whole(uploads, s3, pan123_sim, small_slices):
    pan123_sim.faults.add("code", method="POST", path=SLICE_PATH, code=401, message="token is expired")
    data = content(SLICE)

    _, file_id = upload(uploads, put(s3, data))

    assert [call.body["slice"]["size"] for call in calls(pan123_sim, SLICE_PATH)] == [SLICE, SLICE]
    assert pan123_sim.content_of(file_id) == data


def test_only_the_slices_asked_for_are_sent(uploads, s3, pan123_sim, small_slices):
    obj = put(s3, content(3 * SLICE))
    digest = uploads.digest(obj, SLICE)
    created = uploads.create(uploads.folder([]), "q3.bin", digest, 1)

    assert uploads.upload_slices(obj, created, digest, [3, 2]) == [2, 3]
    assert sorted(call.body["sliceNo"] for call in calls(pan123_sim, SLICE_PATH)) == ["2", "3"]
    with pytest.raises(ValueError, match="from 1 to 3"):
        uploads.upload_slices(obj, created, digest, [4])


class OneToken:
    """A token source holding one token a simulator issued."""

    def __init__(self, sim: Pan123Simulator) -> None:
        self.token = sim.issue_token()

    def access_token(self, *, fresh: bool = False) -> str:
        return self.token

    def rejected(self, token: str) -> None:
        pass


def test_slices_in_flight_are_bounded(s3):
    with Pan123Simulator(slice_size=SLICE) as sim:  # its own: no call of another test still in flight
        sim.latency_s = 0.05
        pan123 = Pan123(HttpTransport(sim.url, provider="123pan", timeout_s=2), OneToken(sim))
        uploads = Pan123Uploads(pan123, s3, slice_concurrency=3)
        data = content(12 * SLICE)

        _, file_id = upload(uploads, put(s3, data))

        assert sim.max_in_flight == 3
        assert sim.content_of(file_id) == data


def test_a_provider_slice_size_other_than_the_digests_is_hashed_again(uploads, s3, pan123_sim, small_slices):
    data = content(3 * SLICE + 10)

    _, file_id = upload(uploads, put(s3, data), slice_size=16 * 1024**2)

    assert len(calls(pan123_sim, SLICE_PATH)) == 4
    assert pan123_sim.content_of(file_id) == data


def test_complete_answers_none_while_the_provider_verifies(uploads, s3, pan123_sim, small_slices):
    pan123_sim.verify_polls = 2
    obj = put(s3, content(SLICE))
    digest = uploads.digest(obj, SLICE)
    created = uploads.create(uploads.folder([]), "q3.bin", digest, 1)
    uploads.upload_slices(obj, created, digest, [1])

    answers = [uploads.complete(created) for _ in range(4)]

    assert answers[:2] == [None, None]
    assert answers[2] == answers[3] == pan123_sim.find("/sharelink/q3.bin")["fileId"]


def test_content_that_does_not_match_the_md5_is_rejected_for_good(uploads, s3, pan123_sim, small_slices):
    obj = put(s3, content(2 * SLICE))
    digest = uploads.digest(obj, SLICE) | {"md5": hashlib.md5(b"something else").hexdigest()}
    created = uploads.create(uploads.folder([]), "q3.bin", digest, 1)
    uploads.upload_slices(obj, created, digest, [1, 2])

    with pytest.raises(UploadRejected) as rejected:
        for _ in range(5):
            uploads.complete(created)

    assert rejected.value.code == "upload_rejected"
    assert rejected.value.status == 422
    assert not rejected.value.transient
    assert pan123_sim.find("/sharelink/q3.bin") is None


def test_a_slice_md5_the_provider_refuses_is_a_typed_refusal(uploads, s3, pan123_sim, small_slices):
    obj = put(s3, content(SLICE))
    digest = uploads.digest(obj, SLICE) | {"slice_md5s": [hashlib.md5(b"other").hexdigest()]}
    created = uploads.create(uploads.folder([]), "q3.bin", digest, 1)

    with pytest.raises(ProviderRejected):
        uploads.upload_slices(obj, created, digest, [1])


def test_the_same_name_twice_keeps_both(uploads, s3, pan123_sim, small_slices):
    _, first = upload(uploads, put(s3, content(10)))
    _, second = upload(uploads, put(s3, content(20)))

    names = {item["filename"] for item in pan123_sim.files_in("/sharelink/reports")}
    assert first != second
    assert names == {"q3.bin", "q3(1).bin"}


def test_an_existing_folder_is_found_not_made_again(uploads, pan123_sim):
    existing = pan123_sim.make_folder("/sharelink/reports")

    assert uploads.folder(["reports"]) == existing
    assert calls(pan123_sim, MKDIR_PATH) == []
    assert [call.query["parentFileId"] for call in calls(pan123_sim, LIST_PATH)] == [
        "0",
        str(pan123_sim.find("/sharelink")["fileId"]),
    ]


def test_a_trashed_folder_of_the_same_name_is_not_used(uploads, pan123_sim):
    trashed = pan123_sim.make_folder("/sharelink/reports")
    pan123_sim.trash(trashed)

    made = uploads.folder(["reports", "2026"])

    assert made == pan123_sim.find("/sharelink/reports/2026")["fileId"]
    assert pan123_sim.find("/sharelink/reports")["fileId"] != trashed
    assert len(calls(pan123_sim, MKDIR_PATH)) == 2


def test_a_folder_made_meanwhile_is_found_after_the_mkdir_clash(uploads, pan123_sim, monkeypatch):
    """Another upload made the folder, and the provider lists it late (eventual consistency)."""
    root = pan123_sim.make_folder("/sharelink")
    monkeypatch.setattr(pan123_sim, "list_lag", 2)
    token = json.loads(new_session().client("secretsmanager").get_secret_value(SecretId=PAN123_SECRET)["SecretString"])
    made_by_other = requests.post(
        pan123_sim.url + MKDIR_PATH,
        headers={"Platform": "open_platform", "Authorization": f"Bearer {token['access_token']}"},
        json={"name": "reports", "parentID": root},
        timeout=5,
    ).json()["data"]["dirID"]

    assert uploads.folder(["reports"]) == made_by_other
    assert len(calls(pan123_sim, MKDIR_PATH)) == 2  # the other upload's, then ours refused
    assert len(calls(pan123_sim, LIST_PATH)) == 4  # the root, reports hidden, hidden again, found


def test_a_long_folder_is_listed_to_its_last_page(uploads, pan123_sim):
    for number in range(150):
        pan123_sim.make_folder(f"/sharelink/f{number:03d}")
    wanted = pan123_sim.find("/sharelink/f149")["fileId"]

    assert uploads.folder(["f149"]) == wanted
    assert calls(pan123_sim, MKDIR_PATH) == []


@pytest.mark.parametrize("name", ["a:b.txt", "x" * 256, "   ", 'say "hi".txt', "a/b"])
def test_names_the_provider_refuses_are_rejected_before_any_call(uploads, pan123_sim, name):
    digest = {"md5": EMPTY_MD5, "size": 0, "slice_size": SLICE, "slice_md5s": []}

    with pytest.raises(UploadRejected) as as_file:
        uploads.create(0, name, digest, 1)
    with pytest.raises(UploadRejected):
        uploads.folder(["ok", name])

    assert as_file.value.details[0]["field"] == "filename"
    assert pan123_sim.requests == []


def test_a_file_over_10_gib_is_rejected_before_any_call(uploads, pan123_sim):
    digest = {"md5": EMPTY_MD5, "size": 10 * 1024**3 + 1, "slice_size": SLICE, "slice_md5s": []}

    with pytest.raises(UploadRejected, match="limit"):
        uploads.create(0, "big.iso", digest, 1)
    assert pan123_sim.requests == []


def test_the_uploaded_file_is_shared(uploads, pan123, s3, pan123_sim, small_slices):
    _, file_id = upload(uploads, put(s3, content(100)))

    share = pan123.create_share(CreateShareRequest(name="q3.bin", expire_days=7, file_ids=[file_id]))

    assert share.file_ids == [str(file_id)]
    assert pan123_sim.shares[int(share.share_id)]["fileIds"] == [file_id]
