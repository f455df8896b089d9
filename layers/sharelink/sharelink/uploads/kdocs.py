"""Uploading an S3 object version to KDocs (providers/kdocs/upload.md): one multipart POST, the file streamed from S3.

Unconfirmed: how the provider wants the `parent_path` list in a multipart body (sent as repeated fields, one folder
name each; PARENT_PATH_AS_JSON switches to one field holding a JSON array), and that the new file's token (what the
links API takes) is `data.id.open_id`.
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any

from sharelink.errors import ProviderError, UploadRejected
from sharelink.providers.kdocs import PROVIDER, Kdocs, unwrap
from sharelink.tokens import with_token
from sharelink.transport import Multipart
from sharelink.uploads import StoredObject, file_part

UPLOAD_PATH = "/api/v1/openapi/personal/files/upload"
PARENT_PATH_AS_JSON = False
# What KDocs takes (documents only); which other types it refuses is unconfirmed, so only these are sent.
DOCUMENT_TYPES = frozenset({".docx", ".doc", ".xlsx", ".xls", ".pptx", ".ppt", ".ksheet", ".otl", ".dbt", ".pdf"})


class KdocsUploads:
    def __init__(self, kdocs: Kdocs, s3: Any) -> None:
        self.kdocs = kdocs
        self.s3 = s3

    @staticmethod
    def check_type(filename: str) -> None:
        """Refuse, before any call, a file KDocs would not take."""
        extension = PurePosixPath(filename).suffix.lower()
        if extension not in DOCUMENT_TYPES:
            kinds = " ".join(sorted(DOCUMENT_TYPES))
            problem = f"KDocs takes documents only ({kinds}), not {extension or 'a file without extension'}"
            raise UploadRejected(f"{filename[:64]!r}: {problem}", details=[{"field": "filename", "problem": problem}])

    def upload(self, obj: StoredObject, filename: str, parent_path: list[str]) -> str:
        """The new file's token, the file landing in the app's folder under `parent_path` (created as needed).

        One POST, not idempotent: like a share create it is never resent after a timeout or a dropped connection
        (the Kdocs transport retries no POST), only after the provider refused the token."""
        self.check_type(filename)
        form = Multipart(_parent_path_fields(parent_path), file_part(self.s3, obj, "file", filename, 0, obj.size))

        def send(token: str) -> dict[str, Any]:
            return unwrap(self.kdocs.transport.send("POST", UPLOAD_PATH, params={"access_token": token}, form=form))

        data = with_token(self.kdocs.tokens, send)
        file_id = data.get("id")
        open_id = file_id.get("open_id") if isinstance(file_id, dict) else None
        if not open_id:
            raise ProviderError("kdocs answered the upload without id.open_id", provider=PROVIDER)
        return str(open_id)


def _parent_path_fields(parent_path: list[str]) -> list[tuple[str, str]]:
    if PARENT_PATH_AS_JSON and parent_path:
        return [("parent_path", json.dumps(parent_path, ensure_ascii=False))]
    return [("parent_path", name) for name in parent_path]
