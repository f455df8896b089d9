"""Drop a file, get a link, through the whole local stack: S3 put -> notification -> SQS -> the upload starter ->
Lambda's Invoke with a durable execution name -> AWS's local durable engine -> the upload function -> the simulator.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator

import pytest

from local.stack import LocalStack
from tests.conftest import observe_results
from tests.e2e.test_storage_events import send_notification
from tests.leaks import observe

MIB = 1024 * 1024
SLICE = 16 * MIB
WAIT_S = 300


@pytest.fixture(scope="module")
def upload_stack() -> Iterator[LocalStack]:
    with LocalStack(sim_lifetime_s=900, queue_visibility_timeout_s=3, queue_function_timeout_s=3) as running:
        running.gateway.observers.append(observe)
        yield running
        observe_results(running.aws)


def bucket(stack: LocalStack) -> str:
    return stack.template.physical_name("ShareRequestsBucket")


def drop(stack: LocalStack, key: str, data: bytes, **metadata: str) -> str:
    stack.aws.client("s3").put_object(Bucket=bucket(stack), Key=key, Body=data, Metadata=metadata)
    return key


def result_of(stack: LocalStack, key: str) -> dict:
    s3 = stack.aws.client("s3")
    result_key = "results/" + key + ".json"
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            return json.loads(s3.get_object(Bucket=bucket(stack), Key=result_key)["Body"].read())
        except s3.exceptions.NoSuchKey:
            time.sleep(0.5)
    raise AssertionError(f"no result for {key}")


@pytest.mark.parametrize(
    ("name", "size"),
    [("empty.bin", 0), ("one KiB.txt", 1024), ("one slice.bin", SLICE), ("slice plus one.bin", SLICE + 1)],
)
def test_files_of_every_shape_land_once_and_are_shared(upload_stack, name, size):
    sim = upload_stack.sims["pan123"]
    data = (hashlib.sha256(name.encode()).digest() * (size // 32 + 1))[:size]
    key = drop(upload_stack, f"uploads/123pan/报告 2026/{name}", data, **{"expire-days": "30"})

    result = result_of(upload_stack, key)

    assert result["status"] == "created", result
    stored = sim.find(f"/sharelink/报告 2026/{name}")
    assert stored is not None and stored["etag"] == hashlib.md5(data).hexdigest()
    shares = [share for share in sim.shares.values() if share["shareName"] == name]
    assert len(shares) == 1
    assert result["share"]["file_ids"] == [str(stored["fileId"])]
    tags = upload_stack.aws.client("s3").get_object_tagging(Bucket=bucket(upload_stack), Key=key)["TagSet"]
    assert tags == [{"Key": "sharelink-url", "Value": result["share"]["url"]}]


def test_a_redelivered_notification_uploads_and_shares_nothing_more(upload_stack):
    sim = upload_stack.sims["pan123"]
    key = drop(upload_stack, "uploads/123pan/twice.txt", b"twice" * 100)
    first = result_of(upload_stack, key)

    send_notification(upload_stack, "UploadsQueue", key)
    time.sleep(5)  # give the redelivery time to do anything it would wrongly do

    assert first["status"] == "created"
    assert [share["shareName"] for share in sim.shares.values()].count("twice.txt") == 1
    assert len([entry for entry in sim.files_in("/sharelink") if entry["filename"].startswith("twice")]) == 1


def test_a_document_goes_to_kdocs_and_a_zip_is_refused(upload_stack):
    docx = drop(upload_stack, "uploads/kdocs/团队/plan.docx", b"PK\x03\x04 a document")
    archive = drop(upload_stack, "uploads/kdocs/团队/archive.zip", b"PK\x03\x04 an archive")

    created, refused = result_of(upload_stack, docx), result_of(upload_stack, archive)

    assert created["status"] == "created", created
    assert created["share"]["url"].startswith("https://kdocs.cn/l/")
    assert (refused["status"], refused["error"]["code"]) == ("rejected", "upload_rejected")


def test_a_100_mib_file_survives_faults_on_its_slices(upload_stack):
    """Slices answered 5xx, dropped before and after the provider took them, and timed out: each slice is retried on
    its own; the file is complete with the right MD5 and shared once. A slice whose answer was lost may be taken
    twice (the provider stores the same bytes again); no other slice is sent twice."""
    sim = upload_stack.sims["pan123"]
    data = hashlib.sha256(b"big").digest() * (100 * MIB // 32)
    slice_path = "/upload/v2/file/slice"
    for kind, options in (("http500", {}), ("close", {}), ("close_after", {}), ("timeout", {"delay": 12})):
        sim.faults.add(kind, method="POST", path=slice_path, **options)
    before = dict(sim.slice_uploads)

    key = drop(upload_stack, "uploads/123pan/big/100 MiB.bin", data)
    result = result_of(upload_stack, key)

    assert result["status"] == "created", result
    stored = sim.find("/sharelink/big/100 MiB.bin")
    assert stored is not None and stored["etag"] == hashlib.md5(data).hexdigest()
    taken = {number: count for (upload, number), count in sim.slice_uploads.items() if (upload, number) not in before}
    assert sorted(taken) == list(range(1, 8))  # 100 MiB in 16 MiB slices
    assert sum(taken.values()) <= 7 + 2  # only the slices whose answers were lost (close_after, timeout) twice
    assert [share["shareName"] for share in sim.shares.values()].count("100 MiB.bin") == 1


def test_content_the_provider_already_holds_sends_no_byte(upload_stack):
    sim = upload_stack.sims["pan123"]
    data = b"held already" * 10_000
    sim.hold_content(hashlib.md5(data).hexdigest(), len(data))
    before = len(sim.slice_uploads)

    result = result_of(upload_stack, drop(upload_stack, "uploads/123pan/held.bin", data))

    assert (result["status"], result["file"]["instant"]) == ("created", True)
    assert len(sim.slice_uploads) == before
