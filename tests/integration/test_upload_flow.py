"""The durable upload flow run by AWS's own durable-execution test runner (DurableFunctionTestRunner): steps, waits
and replays offline, against the simulators over HTTP and moto acting as the upload function's template role."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aws_durable_execution_sdk_python import durable_execution
from aws_durable_execution_sdk_python.execution import InvocationStatus
from aws_durable_execution_sdk_python_testing.runner import DurableFunctionTestRunner

from sharelink import aws as sharelink_aws
from sharelink.idempotency import attempts_from_env, dynamodb
from sharelink.providers.kdocs import Kdocs
from sharelink.providers.pan123 import Pan123
from sharelink.results import Results
from sharelink.upload_flow import TAG_VALUE, KdocsSteps, Pan123Steps, ShareDefaults, Upload, UploadFlow
from sharelink.upload_starts import execution_name
from sharelink.uploads import StoredObject
from sharelink.uploads.kdocs import KdocsUploads
from sharelink.uploads.pan123 import Pan123Uploads
from tests.conftest import KDOCS_SECRET, PAN123_SECRET, REQUESTS_BUCKET, acting_as, versioned_bucket

MIB = 1024 * 1024
DEFAULTS = ShareDefaults(expire_days=7, permission="read", allow_comment=False, pan123_folder="/sharelink")


INVOCATION_TIMEOUT_S = 3


@pytest.fixture
def bucket(fresh_aws):
    return versioned_bucket(fresh_aws, REQUESTS_BUCKET)


def put_upload(s3: Any, key: str, data: bytes, **metadata: str) -> dict[str, Any]:
    """Drop a file as a user would; the durable function's input as the starter builds it."""
    version = s3.put_object(Bucket=REQUESTS_BUCKET, Key=key, Body=data, Metadata=metadata)["VersionId"]
    obj = {"bucket": REQUESTS_BUCKET, "key": key, "version_id": version, "size": len(data)}
    return {"object": obj, "execution": execution_name(key.split("/")[1], REQUESTS_BUCKET, key, version)}


def flow_for(fresh_aws, function_id: str, steps: Callable[[Any], Any], provider: Any) -> UploadFlow:
    with acting_as(fresh_aws, function_id):
        session = sharelink_aws.session()
    s3 = session.client("s3")
    return UploadFlow(steps(session), provider(session), s3, Results(s3, session.client("events")),
                      attempts_from_env(dynamodb(session)), DEFAULTS)  # fmt: skip


def run(flow: UploadFlow, event: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """One durable execution; an invocation still running after INVOCATION_TIMEOUT_S is given up, as Lambda ends
    a timed-out invocation, and the function is invoked again to replay from its checkpoints."""
    handler = durable_execution(lambda payload, context: flow.run(payload, context))
    with DurableFunctionTestRunner(handler=handler, invocation_timeout=INVOCATION_TIMEOUT_S) as runner:
        outcome = runner.run(input=json.dumps(event), execution_timeout=120)
    return outcome, json.loads(outcome.result) if outcome.result else {}


@pytest.fixture
def pan123_flow(fresh_aws, pan123_sim, monkeypatch) -> Iterator[Callable[..., UploadFlow]]:
    monkeypatch.setattr(pan123_sim, "slice_size", MIB)
    monkeypatch.setenv("PAN123_BASE_URL", pan123_sim.url)
    monkeypatch.setenv("PAN123_SECRET_ID", PAN123_SECRET)

    def make(uploads_class: type[Pan123Uploads] = Pan123Uploads) -> UploadFlow:
        def pan123(session: Any) -> Pan123:
            return Pan123.from_env(session)

        def steps(session: Any) -> Pan123Steps:
            return Pan123Steps(uploads_class(pan123(session), session.client("s3")), slice_concurrency=2)

        return flow_for(fresh_aws, "Pan123UploadFunction", steps, pan123)

    yield make


def test_a_file_is_uploaded_in_slices_and_shared(pan123_flow, pan123_sim, bucket):
    data = bytes(range(256)) * (14 * 1024)  # 3.5 MiB: 4 slices of 1 MiB
    event = put_upload(bucket, "uploads/123pan/reports/季度 报告.pdf", data, **{"expire-days": "30"})

    outcome, result = run(pan123_flow(), event)

    assert outcome.status is InvocationStatus.SUCCEEDED
    assert result["status"] == "created"
    stored = pan123_sim.find("/sharelink/reports/季度 报告.pdf")
    assert stored is not None and stored["etag"] == hashlib.md5(data).hexdigest()
    assert result["file"] == {"provider_file_id": str(stored["fileId"]), "path": "/sharelink/reports/季度 报告.pdf",
                              "instant": False}  # fmt: skip
    assert result["share"]["file_ids"] == [str(stored["fileId"])]
    assert len(pan123_sim.shares) == 1
    assert sorted(count for count in pan123_sim.slice_uploads.values()) == [1, 1, 1, 1]
    written = json.loads(
        bucket.get_object(Bucket=REQUESTS_BUCKET, Key="results/uploads/123pan/reports/季度 报告.pdf.json")[
            "Body"
        ].read()
    )
    assert written == result
    tags = bucket.get_object_tagging(Bucket=REQUESTS_BUCKET, Key=event["object"]["key"])["TagSet"]
    assert tags == [{"Key": "sharelink-url", "Value": result["share"]["url"]}]


def tags(s3: Any, event: dict[str, Any]) -> list[dict[str, str]]:
    obj = event["object"]
    return list(s3.get_object_tagging(Bucket=obj["bucket"], Key=obj["key"], VersionId=obj["version_id"])["TagSet"])


def tagged(s3: Any, event: dict[str, Any], count: int) -> list[dict[str, str]]:
    """The object of `event` given `count` tags of its owner's."""
    owners = [{"Key": f"owner-{number}", "Value": "kept"} for number in range(count)]
    obj = event["object"]
    s3.put_object_tagging(Bucket=obj["bucket"], Key=obj["key"], VersionId=obj["version_id"], Tagging={"TagSet": owners})
    return owners


def test_the_link_is_added_to_the_objects_own_tags(pan123_flow, bucket):
    event = put_upload(bucket, "uploads/123pan/tagged.pdf", b"%PDF tagged")
    owners = tagged(bucket, event, 3)

    _, result = run(pan123_flow(), event)

    assert tags(bucket, event) == [*owners, {"Key": "sharelink-url", "Value": result["share"]["url"]}]


def test_an_object_with_s3s_ten_tags_keeps_them_and_its_link_is_in_the_result(pan123_flow, bucket):
    event = put_upload(bucket, "uploads/123pan/full.pdf", b"%PDF full")
    owners = tagged(bucket, event, 10)

    outcome, result = run(pan123_flow(), event)

    assert (outcome.status, result["status"]) == (InvocationStatus.SUCCEEDED, "created")
    assert result["share"]["url"].startswith("https://")
    assert tags(bucket, event) == owners


@pytest.mark.parametrize(
    ("url", "taken"),
    [
        ("https://www.123pan.com/s/PvitVv-nPeLH", True),
        ("https://www.kdocs.cn/l/ctx4Y2bpGHpX", True),
        ("https://example.com/s/x?pwd=1", False),  # S3 takes no ? & % in a tag value
        ("https://example.com/" + "x" * 237, False),  # 257 characters
    ],
)
def test_a_link_is_tagged_only_as_s3_takes_a_tag_value(url, taken):
    assert bool(TAG_VALUE.fullmatch(url)) is taken


def test_content_the_provider_holds_is_shared_without_sending_a_byte(pan123_flow, pan123_sim, bucket):
    data = b"already there" * 1000
    pan123_sim.hold_content(hashlib.md5(data).hexdigest(), len(data))
    event = put_upload(bucket, "uploads/123pan/copy.bin", data)

    outcome, result = run(pan123_flow(), event)

    assert (outcome.status, result["file"]["instant"]) == (InvocationStatus.SUCCEEDED, True)
    assert not pan123_sim.slice_uploads
    assert len(pan123_sim.shares) == 1


def test_a_replay_after_the_function_died_mid_upload_resumes_at_the_first_unfinished_slice(
    pan123_flow, pan123_sim, bucket
):
    """The invocation times out while slice 3 of 6 is on its way (it never arrives): the next invocation replays
    the checkpoints and sends only the slices not done; the file and the share are made once."""
    data = hashlib.sha256(b"x").digest() * (6 * MIB // 32)

    class DiesOnce(Pan123Uploads):
        died = False
        gone = threading.Event()  # the stopped invocation never comes back (a real one is frozen, then dropped)

        def upload_slices(self, obj: Any, created: Any, digest: Any, numbers: list[int]) -> list[int]:
            if numbers == [3] and not DiesOnce.died:
                DiesOnce.died = True
                DiesOnce.gone.wait(60)
                raise ConnectionResetError("the invocation was stopped")
            return super().upload_slices(obj, created, digest, numbers)

    event = put_upload(bucket, "uploads/123pan/big.bin", data)

    try:
        outcome, _ = run(pan123_flow(DiesOnce), event)
    finally:
        DiesOnce.gone.set()

    assert DiesOnce.died
    assert outcome.status is InvocationStatus.SUCCEEDED, outcome.error
    assert sorted(number for (_, number) in pan123_sim.slice_uploads) == [1, 2, 3, 4, 5, 6]
    assert set(pan123_sim.slice_uploads.values()) == {1}  # no accepted slice was sent again
    assert len(pan123_sim.shares) == 1
    assert pan123_sim.find("/sharelink/big.bin")["etag"] == hashlib.md5(data).hexdigest()


def test_settings_that_can_never_work_are_rejected_before_any_call(pan123_flow, pan123_sim, bucket):
    event = put_upload(bucket, "uploads/123pan/x.pdf", b"%PDF", **{"expire-days": "3"})

    outcome, result = run(pan123_flow(), event)

    assert outcome.status is InvocationStatus.SUCCEEDED
    assert (result["status"], result["error"]["code"]) == ("rejected", "upload_rejected")
    assert "expire_days" in result["error"]["message"]
    assert not [call for call in pan123_sim.requests if "/upload/" in call.path]


def test_an_upload_whose_key_leaves_no_room_for_its_results_still_gets_one(pan123_flow, bucket):
    key = "uploads/123pan/" + "长" * 333 + ".pdf"  # 1,018 bytes; results/ and .json would make 1,031, over S3's 1,024
    event = put_upload(bucket, key, b"%PDF", **{"expire-days": "3"})

    outcome, result = run(pan123_flow(), event)

    assert outcome.status is InvocationStatus.SUCCEEDED
    (written,) = [
        entry["Key"] for entry in bucket.list_objects_v2(Bucket=REQUESTS_BUCKET, Prefix="results/")["Contents"]
    ]
    assert written.startswith("results/uploads/123pan/长长长") and len(written.encode()) <= 1024
    assert json.loads(bucket.get_object(Bucket=REQUESTS_BUCKET, Key=written)["Body"].read()) == result
    assert (result["status"], result["upload"]["key"]) == ("rejected", key)


def test_paths_cut_for_their_result_keys_keep_keys_of_their_own():
    long_path = "uploads/123pan/" + "d" * 1000
    keys = {Upload(StoredObject("b", long_path + end, None, 1), "123pan").result_key for end in ("1", "2")}

    assert len(keys) == 2
    assert all(len(key.encode()) == 1024 and key.endswith(".json") for key in keys)


@pytest.fixture
def kdocs_flow(fresh_aws, kdocs_sim, monkeypatch) -> UploadFlow:
    monkeypatch.setenv("KDOCS_BASE_URL", kdocs_sim.url)
    monkeypatch.setenv("KDOCS_SECRET_ID", KDOCS_SECRET)

    def kdocs(session: Any) -> Kdocs:
        return Kdocs.from_env(session)

    def steps(session: Any) -> KdocsSteps:
        return KdocsSteps(KdocsUploads(kdocs(session), session.client("s3")))

    return flow_for(fresh_aws, "KdocsUploadFunction", steps, kdocs)


def test_a_document_goes_to_kdocs_under_the_keys_folders_and_is_shared(kdocs_flow, kdocs_sim, bucket):
    event = put_upload(bucket, "uploads/kdocs/团队/计划.docx", b"PK\x03\x04 docx bytes", permission="write")

    outcome, result = run(kdocs_flow, event)

    assert outcome.status is InvocationStatus.SUCCEEDED, outcome.error
    assert result["status"] == "created"
    token = result["file"]["provider_file_id"]
    assert kdocs_sim.files[token]["filename"].endswith("计划.docx")
    assert (result["share"]["file_ids"], result["share"]["permission"]) == ([token], "write")


def test_a_type_kdocs_does_not_take_is_rejected_before_any_call(kdocs_flow, kdocs_sim, bucket):
    event = put_upload(bucket, "uploads/kdocs/archive.zip", b"PK\x03\x04")

    _, result = run(kdocs_flow, event)

    assert (result["status"], result["error"]["code"]) == ("rejected", "upload_rejected")
    assert not kdocs_sim.requests
