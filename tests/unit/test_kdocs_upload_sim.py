"""The KDocs simulator's upload endpoint, exercised over real HTTP on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from local.simulators.kdocs import ALL_SCOPES, DOCUMENT_EXTENSIONS, UPLOAD_SCOPE, KdocsSimulator

UPLOAD_PATH = "/api/v1/openapi/personal/files/upload"
APP_FOLDER = "/我的文档/应用/sim-app"
CONTENT = b"PK\x03\x04 a docx, more or less"


@pytest.fixture
def sim() -> Iterator[KdocsSimulator]:
    with KdocsSimulator() as simulator:
        yield simulator


@pytest.fixture
def token(sim: KdocsSimulator) -> str:
    return sim.issue_token(scope=ALL_SCOPES)["access_token"]


def envelope(response: requests.Response) -> dict[str, Any]:
    assert response.status_code == 200
    document = response.json()
    assert set(document) == ({"code", "data"} if document["code"] == 0 else {"code", "msg", "data"})
    return document


def upload(
    sim: KdocsSimulator,
    token: str | None,
    filename: str = "report.docx",
    content: bytes = CONTENT,
    fields: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    parts: list[tuple[str, tuple[str | None, bytes | str]]] = [("file", (filename, content))]
    parts += [(name, (None, value)) for name, value in fields or []]
    params = {} if token is None else {"access_token": token}
    return envelope(requests.post(sim.url + UPLOAD_PATH, params=params, files=parts, timeout=10))


def links(sim: KdocsSimulator, token: str, file_token: str) -> dict[str, Any]:
    path = f"/api/v1/openapi/personal/files/{file_token}/links"
    body = {"range": "anyone", "permission": "read"}
    return envelope(requests.post(sim.url + path, params={"access_token": token}, json=body, timeout=10))


def test_an_upload_lands_in_the_apps_folder_and_answers_its_id(sim: KdocsSimulator, token: str) -> None:
    answer = upload(sim, token)
    assert answer["code"] == 0
    data = answer["data"]
    assert set(data) == {"id", "fname", "fsize", "path", "parent_id"}
    assert set(data["id"]) == {"open_id", "union_id"}
    assert (data["fname"], data["fsize"], data["path"]) == ("report.docx", len(CONTENT), f"{APP_FOLDER}/report.docx")
    file = sim.file_at(f"{APP_FOLDER}/report.docx")
    assert file is not None
    assert (file["file_token"], file["owner"], file["size"]) == (data["id"]["open_id"], "sim-user", len(CONTENT))
    assert file["md5"] == hashlib.md5(CONTENT).hexdigest()
    assert file["content"] == CONTENT


def test_the_uploaded_file_takes_a_share_link(sim: KdocsSimulator, token: str) -> None:
    open_id = upload(sim, token)["data"]["id"]["open_id"]
    link = links(sim, token, open_id)
    assert link["code"] == 0 and link["data"]["filename"] == "report.docx"
    assert sim.open_link(link["data"]["sid"]) is not None
    other = sim.issue_token(user="other-user", scope=ALL_SCOPES)["access_token"]
    assert links(sim, other, open_id)["code"] == 10003  # the authorizing user owns it


def test_upload_needs_create_personal_files(sim: KdocsSimulator) -> None:
    edit_only = sim.issue_token(scope="edit_personal_files")["access_token"]
    refused = upload(sim, edit_only)
    assert refused["code"] == 10003 and UPLOAD_SCOPE in refused["msg"]
    create_only = sim.issue_token(scope=UPLOAD_SCOPE)["access_token"]
    open_id = upload(sim, create_only)["data"]["id"]["open_id"]
    assert links(sim, create_only, open_id)["code"] == 10003  # links still need edit_personal_files
    assert upload(sim, None)["code"] == 30001
    assert upload(sim, "kvqxrspxjctdojjqdildjhonzwusaquc")["code"] == 30001


def test_consent_grants_both_scopes(sim: KdocsSimulator) -> None:
    params = {"app_id": "sim-app", "scope": ALL_SCOPES, "redirect_uri": "http://127.0.0.1:9/cb", "state": "s"}
    redirect = requests.get(sim.url + "/h5/auth", params=params, allow_redirects=False, timeout=5)
    code = parse_qs(urlsplit(redirect.headers["Location"]).query)["code"][0]
    exchange = {"code": code, "app_id": "sim-app", "app_key": "sim-app-key"}
    answer = requests.get(sim.url + "/api/v1/oauth2/access_token", params=exchange, timeout=5).json()
    token = answer["data"]["access_token"]
    assert links(sim, token, upload(sim, token)["data"]["id"]["open_id"])["code"] == 0


@pytest.mark.parametrize("filename", ["notes.txt", "photo.jpg", "archive.zip", "README", "report.docx.exe"])
def test_other_file_types_are_refused(sim: KdocsSimulator, token: str, filename: str) -> None:
    answer = upload(sim, token, filename)
    assert answer["code"] == 10001 and "not supported" in answer["msg"]
    assert sim.uploaded == set()


@pytest.mark.parametrize("extension", sorted(DOCUMENT_EXTENSIONS | {".DOCX", ".Pdf"}))
def test_document_types_are_taken_whatever_their_case(sim: KdocsSimulator, token: str, extension: str) -> None:
    assert upload(sim, token, f"file{extension}")["code"] == 0


def test_document_extensions_are_the_documented_ones() -> None:
    assert {".docx", ".doc", ".xlsx", ".xls", ".pptx", ".ppt", ".ksheet", ".otl", ".dbt", ".pdf"} == DOCUMENT_EXTENSIONS


@pytest.mark.parametrize(
    "fields",
    [
        [("parent_path", "a"), ("parent_path", "b")],
        [("parent_path", '["a", "b"]')],
        [("parent_path[]", "a"), ("parent_path[]", "b")],
    ],
)
def test_parent_path_makes_folders_below_the_apps_folder(
    sim: KdocsSimulator, token: str, fields: list[tuple[str, str]]
) -> None:
    first = upload(sim, token, fields=fields)["data"]
    assert first["path"] == f"{APP_FOLDER}/a/b/report.docx"
    second = upload(sim, token, "plan.xlsx", fields=fields)["data"]
    assert second["parent_id"] == first["parent_id"]  # the folders are made once
    assert sorted(folder["path"] for folder in sim.folders.values()) == [
        "/我的文档/应用",
        APP_FOLDER,
        f"{APP_FOLDER}/a",
        f"{APP_FOLDER}/a/b",
    ]


@pytest.mark.parametrize(
    "fields",
    [
        [("parent_path", "")],
        [("parent_path", "a/b")],
        [("parent_path", "..")],
        [("parent_path", "[1, 2]")],
        [("parent_path", "[not json")],
        [("path_from_root", "maybe")],
    ],
)
def test_bad_parent_fields_are_refused(sim: KdocsSimulator, token: str, fields: list[tuple[str, str]]) -> None:
    assert upload(sim, token, fields=fields)["code"] == 10001


def test_path_from_root_and_parent_id(sim: KdocsSimulator, token: str) -> None:
    at_root = upload(sim, token, fields=[("path_from_root", "true"), ("parent_path", "x")])["data"]
    assert at_root["path"] == "/我的文档/x/report.docx"
    below = upload(sim, token, "b.pdf", fields=[("parent_id", at_root["parent_id"]), ("parent_path", "y")])["data"]
    assert below["path"] == "/我的文档/x/y/b.pdf"
    root = upload(sim, token, "c.pdf", fields=[("parent_id", "0")])["data"]
    assert root["path"] == "/我的文档/c.pdf"
    assert upload(sim, token, "d.pdf", fields=[("path_from_root", "false")])["data"]["path"] == f"{APP_FOLDER}/d.pdf"
    assert upload(sim, token, "e.pdf", fields=[("parent_id", "424242")])["code"] == 30012
    other = sim.issue_token(user="other-user", scope=ALL_SCOPES)["access_token"]
    assert upload(sim, other, "f.pdf", fields=[("parent_id", at_root["parent_id"])])["code"] == 10003


def test_the_app_folder_is_named_after_the_app() -> None:
    with KdocsSimulator(app_names={"sim-app": "分享助手"}) as sim:
        token = sim.issue_token(scope=ALL_SCOPES)["access_token"]
        assert upload(sim, token)["data"]["path"] == "/我的文档/应用/分享助手/report.docx"


def test_a_name_taken_in_the_folder_gets_a_number(sim: KdocsSimulator, token: str) -> None:
    names = [upload(sim, token)["data"]["fname"] for _ in range(3)]
    assert names == ["report.docx", "report(1).docx", "report(2).docx"]
    sim.on_name_clash = "refuse"
    assert upload(sim, token)["code"] == 10001


def test_the_size_limit_is_a_switch() -> None:
    with KdocsSimulator(max_upload_bytes=10) as sim:
        token = sim.issue_token(scope=ALL_SCOPES)["access_token"]
        assert upload(sim, token, content=b"x" * 10)["code"] == 0
        too_big = upload(sim, token, "b.docx", content=b"x" * 11)
        assert too_big["code"] == 10001 and "limit" in too_big["msg"]


def test_large_files_keep_their_size_not_their_bytes() -> None:
    with KdocsSimulator(small_content_limit=8) as sim:
        token = sim.issue_token(scope=ALL_SCOPES)["access_token"]
        upload(sim, token, content=b"y" * 100)
        file = sim.file_at(f"{APP_FOLDER}/report.docx")
        assert file is not None and file["size"] == 100 and "content" not in file
        recorded = requests.get(sim.url + "/__sim/requests", timeout=5).json()[-1]["body"]
        assert recorded == {
            "file": {"filename": "report.docx", "size": 100, "md5": hashlib.md5(b"y" * 100).hexdigest()}
        }


def test_uploads_count_towards_the_daily_quota() -> None:
    with KdocsSimulator(daily_quota=2) as sim:
        token = sim.issue_token(scope=ALL_SCOPES)["access_token"]
        assert [upload(sim, token, f"{n}.docx")["code"] for n in range(3)] == [0, 0, 30002]


def test_the_body_must_be_multipart_with_a_named_file(sim: KdocsSimulator, token: str) -> None:
    params = {"access_token": token}
    as_json = requests.post(sim.url + UPLOAD_PATH, params=params, json={"file": "x"}, timeout=5)
    assert envelope(as_json)["code"] == 10001
    no_file = requests.post(sim.url + UPLOAD_PATH, params=params, files=[("other", ("a.docx", b"1"))], timeout=5)
    assert envelope(no_file)["code"] == 10001
    unnamed = requests.post(sim.url + UPLOAD_PATH, params=params, files=[("file", (None, "1"))], timeout=5)
    assert envelope(unnamed)["code"] == 10001


def test_errors_as_http_status_apply_to_uploads() -> None:
    with KdocsSimulator(errors_as_http_status=True) as sim:
        token = sim.issue_token(scope=ALL_SCOPES)["access_token"]
        response = requests.post(
            sim.url + UPLOAD_PATH, params={"access_token": token}, files=[("file", ("a.txt", b"1"))], timeout=5
        )
        assert (response.status_code, response.json()["code"]) == (400, 10001)


def test_reset_forgets_uploads_and_folders_but_keeps_other_files(sim: KdocsSimulator, token: str) -> None:
    open_id = upload(sim, token, fields=[("parent_path", "a")])["data"]["id"]["open_id"]
    sim.add_file("added", "added.docx")
    assert requests.post(sim.url + "/__sim/reset", timeout=5).status_code == 204
    assert open_id not in sim.files and {"777", "added"} <= set(sim.files)
    assert (sim.folders, sim.uploaded) == ({}, set())


def test_an_upload_fault_can_drop_the_connection_after_the_file_is_made(sim: KdocsSimulator, token: str) -> None:
    sim.faults.add("close_after", path=UPLOAD_PATH)
    with pytest.raises(requests.ConnectionError):
        upload(sim, token)
    assert sim.file_at(f"{APP_FOLDER}/report.docx") is not None
    assert json.dumps([call.body for call in sim.requests])  # recorded bodies stay JSON
