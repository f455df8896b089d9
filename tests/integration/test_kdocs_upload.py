"""Uploading S3 object versions to KDocs, against the KDocs simulator over HTTP and a versioned bucket in moto."""

from __future__ import annotations

import hashlib
import json

import pytest

from sharelink.aws import session as new_session
from sharelink.errors import ProviderError, ProviderForbidden, ProviderTimeout, RequestObjectMissing, UploadRejected
from sharelink.providers.kdocs import SCOPE, CreateLinkRequest, Kdocs
from sharelink.secrets import ManagerSecrets
from sharelink.tokens import SecretTokens
from sharelink.transport import HttpTransport
from sharelink.uploads import StoredObject
from sharelink.uploads.kdocs import DOCUMENT_TYPES, KdocsUploads
from tests.conftest import KDOCS_SECRET, PROVIDER_TIMEOUT_S, versioned_bucket

BUCKET = "sharelink-test-uploads"
UPLOAD_PATH = "/api/v1/openapi/personal/files/upload"
APP_FOLDER = "/我的文档/应用/sim-app"


@pytest.fixture
def s3(fresh_aws):
    return versioned_bucket(fresh_aws, BUCKET)


@pytest.fixture
def consented(kdocs_sim, fresh_aws):
    """The secret after a consent to SCOPE (the links API and uploads)."""
    secrets = fresh_aws.client("secretsmanager")
    secret = json.loads(secrets.get_secret_value(SecretId=KDOCS_SECRET)["SecretString"])
    issued = kdocs_sim.issue_token(scope=SCOPE)
    secret |= {"access_token": issued["access_token"], "refresh_token": issued["refresh_token"]}
    secrets.put_secret_value(SecretId=KDOCS_SECRET, SecretString=json.dumps(secret))
    return kdocs_sim


@pytest.fixture
def kdocs(consented) -> Kdocs:
    return Kdocs(
        HttpTransport(consented.url, provider="kdocs", timeout_s=float(PROVIDER_TIMEOUT_S)),
        SecretTokens(KDOCS_SECRET, ManagerSecrets(new_session()), provider="kdocs"),
    )


@pytest.fixture
def uploads(kdocs, s3) -> KdocsUploads:
    return KdocsUploads(kdocs, s3)


def put(s3, data: bytes, key: str = "uploads/kdocs/reports/2026/q3.docx") -> StoredObject:
    version = s3.put_object(Bucket=BUCKET, Key=key, Body=data)["VersionId"]
    return StoredObject(BUCKET, key, version, len(data))


def content(size: int) -> bytes:
    return bytes(index * 13 % 253 for index in range(size))


def uploaded(sim) -> list:
    return [call for call in sim.requests if call.path == UPLOAD_PATH]


def test_a_document_lands_under_parent_path_and_its_token_takes_a_link(uploads, kdocs, s3, consented):
    data = content(5000)

    token = uploads.upload(put(s3, data), "q3.docx", ["reports", "2026"])

    stored = consented.file_at(f"{APP_FOLDER}/reports/2026/q3.docx")
    assert stored["file_token"] == token
    assert (stored["size"], stored["md5"]) == (len(data), hashlib.md5(data).hexdigest())
    share = kdocs.create_share(CreateLinkRequest(file_token=token, permission="read"))
    assert share.file_ids == [token]
    assert share.name == "q3.docx"


def test_what_goes_out_is_one_multipart_post(uploads, s3, consented):
    data = content(3 * 1024 * 1024 + 7)  # several chunks of the S3 stream

    uploads.upload(put(s3, data), "季度报告.docx", ["报告"])

    (call,) = uploaded(consented)
    assert call.method == "POST"
    assert set(call.query) == {"access_token"}
    assert call.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert int(call.headers["Content-Length"]) > len(data)
    assert call.body == {
        "parent_path": "报告",
        "file": {"filename": "季度报告.docx", "size": len(data), "md5": hashlib.md5(data).hexdigest()},
    }
    assert consented.file_at(f"{APP_FOLDER}/报告/季度报告.docx") is not None


def test_without_parent_path_it_lands_in_the_app_folder(uploads, s3, consented):
    token = uploads.upload(put(s3, content(10), "uploads/kdocs/deck.PPTX"), "deck.PPTX", [])

    assert consented.file_at(f"{APP_FOLDER}/deck.PPTX")["file_token"] == token
    assert "parent_path" not in uploaded(consented)[0].body


def test_an_empty_document_is_uploaded(uploads, s3, consented):
    token = uploads.upload(put(s3, b""), "q3.docx", ["reports"])

    stored = consented.file_at(f"{APP_FOLDER}/reports/q3.docx")
    assert (stored["file_token"], stored["size"]) == (token, 0)


@pytest.mark.parametrize("filename", ["archive.zip", "notes.txt", "README", "report.docx.exe"])
def test_a_type_kdocs_does_not_take_is_refused_before_any_call(uploads, s3, consented, filename):
    with pytest.raises(UploadRejected) as rejected:
        uploads.upload(put(s3, b"PK\x03\x04"), filename, ["reports"])

    assert rejected.value.code == "upload_rejected"
    assert rejected.value.details[0]["field"] == "filename"
    assert consented.requests == []


def test_every_document_type_passes_the_check_in_any_case():
    for extension in DOCUMENT_TYPES:
        KdocsUploads.check_type(f"a{extension}")
        KdocsUploads.check_type(f"A{extension.upper()}")


def test_an_upload_that_timed_out_is_not_sent_again(uploads, s3, consented):
    consented.faults.add("timeout", method="POST", path=UPLOAD_PATH, delay=3)

    with pytest.raises(ProviderTimeout):
        uploads.upload(put(s3, content(100)), "q3.docx", ["reports"])

    assert len(uploaded(consented)) == 1


def test_an_upload_answered_5xx_is_not_sent_again(uploads, s3, consented):
    consented.faults.add("http500", method="POST", path=UPLOAD_PATH, times=3)

    with pytest.raises(ProviderError):
        uploads.upload(put(s3, content(100)), "q3.docx", ["reports"])

    assert len(uploaded(consented)) == 1


def test_a_refused_token_is_read_again_and_the_file_sent_again_whole(uploads, s3, consented):
    consented.faults.add("code", method="POST", path=UPLOAD_PATH, code=30001, msg="token expired")
    data = content(2000)

    token = uploads.upload(put(s3, data), "q3.docx", ["reports"])

    assert [call.body["file"]["size"] for call in uploaded(consented)] == [len(data), len(data)]
    assert consented.file_at(f"{APP_FOLDER}/reports/q3.docx")["file_token"] == token


def test_the_edit_scope_alone_cannot_upload(uploads, s3, consented, fresh_aws):
    """What a consent before this change gave: the upload is refused (10003), nothing is made."""
    secrets = fresh_aws.client("secretsmanager")
    secret = json.loads(secrets.get_secret_value(SecretId=KDOCS_SECRET)["SecretString"])
    narrow = consented.issue_token(scope="edit_personal_files")["access_token"]
    secrets.put_secret_value(SecretId=KDOCS_SECRET, SecretString=json.dumps(secret | {"access_token": narrow}))

    with pytest.raises(ProviderForbidden):
        uploads.upload(put(s3, content(10)), "q3.docx", [])

    assert consented.file_at(f"{APP_FOLDER}/q3.docx") is None


def test_a_version_that_is_gone_is_a_typed_error(uploads, s3, consented):
    obj = put(s3, content(100))
    s3.delete_object(Bucket=BUCKET, Key=obj.key, VersionId=obj.version_id)

    with pytest.raises(RequestObjectMissing):
        uploads.upload(obj, "q3.docx", ["reports"])
