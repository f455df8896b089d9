"""Uploading an S3 object version to 123pan with the V2 flow (providers/123pan/upload.md), one checkpointable step per
method: digest, folder, create, upload_slices, complete. Arguments and results are plain JSON data.

create's `duplicate` is chosen by the caller on purpose; 1 (keep both, the new file gets a suffix) is the safe
choice: 2 (overwrite) would trash a file that earlier shares may point at, and without it a name clash is an error
(unconfirmed), which would refuse every new version of an object.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from sharelink.errors import ProviderError, ProviderRejected, SharelinkError, UploadRejected
from sharelink.providers.pan123 import PLATFORM, PROVIDER, Pan123, unwrap
from sharelink.tokens import with_token
from sharelink.transport import HttpTransport, Multipart, RetryPolicy, Transport
from sharelink.uploads import StoredObject, file_part, md5_of, read_range

MIB = 1024 * 1024
DEFAULT_SLICE_SIZE = 16 * MIB
MAX_FILE_SIZE = 10 * 1024 * MIB
ROOT_FOLDER_ID = 0
CREATE_PATH = "/upload/v2/file/create"
SLICE_PATH = "/upload/v2/file/slice"
COMPLETE_PATH = "/upload/v2/file/upload_complete"
MKDIR_PATH = "/upload/v1/file/mkdir"
LIST_PATH = "/api/v2/file/list"
LIST_PAGE_SIZE = 100
LAST_PAGE = -1
FOLDER_TYPE = 1
FOLDER_EXISTS = "已经有同名文件夹"
VERIFYING_CODE = 20103
# Its code is unconfirmed (upload.md): the message is what identifies it.
UPLOAD_FAILED = "文件上传失败"
# The provider lists a fresh folder late (eventual consistency): after a mkdir clash, list again after these pauses.
CLASH_RELIST_PAUSES_S = (0.0, 0.5, 1.0, 2.0)
FORBIDDEN_NAME_CHARACTERS = frozenset('"\\/:*?|><')
MAX_NAME_LENGTH = 255
# A slice is idempotent by sliceNo (sending it again replaces it), so unlike a create it is resent after a 5xx, a 429,
# a read timeout or a dropped connection, on its own, with backoff (0, 1, 2, 4 s, jittered).
SLICE_RETRIES = 4
SLICE_RETRY = RetryPolicy(
    methods=frozenset({"POST"}),
    statuses=frozenset({429, 500, 502, 503, 504}),
    backoff_factor=0.5,
    backoff_jitter=0.5,
)
# A slice of 16 MiB may take the server a while to take in and hash before it answers.
SLICE_TIMEOUT_S = 30.0


class Pan123Uploads:
    def __init__(
        self,
        pan123: Pan123,
        s3: Any,
        *,
        folder_root: str = "/sharelink",
        slice_concurrency: int = 4,
        slice_timeout_s: float = SLICE_TIMEOUT_S,
    ) -> None:
        self.pan123 = pan123
        self.s3 = s3
        self.root_names = [name for name in folder_root.split("/") if name]
        self.slice_concurrency = slice_concurrency
        self.slice_timeout_s = slice_timeout_s
        self._slice_transports: dict[str, HttpTransport] = {}

    def digest(self, obj: StoredObject, slice_size: int = DEFAULT_SLICE_SIZE) -> dict[str, Any]:
        """The MD5 of the bytes (never the S3 ETag, which is not one for multipart or KMS objects) and of each slice,
        in one streamed read: {"md5", "size", "slice_size", "slice_md5s"}."""
        whole = hashlib.md5(usedforsecurity=False)
        slice_md5s = []
        for start in range(0, obj.size, slice_size):
            piece = hashlib.md5(usedforsecurity=False)
            for chunk in read_range(self.s3, obj, start, min(slice_size, obj.size - start)):
                whole.update(chunk)
                piece.update(chunk)
            slice_md5s.append(piece.hexdigest())
        return {"md5": whole.hexdigest(), "size": obj.size, "slice_size": slice_size, "slice_md5s": slice_md5s}

    def folder(self, parts: list[str]) -> int:
        """The id of the folder folder_root/parts..., walked from the root and made where missing."""
        for name in [*self.root_names, *parts]:
            check_name(name, "folder name")
        folder_id = ROOT_FOLDER_ID
        for name in [*self.root_names, *parts]:
            folder_id = self._listed_folder(folder_id, name) or self._mkdir(folder_id, name)
        return folder_id

    def create(self, parent_id: int, filename: str, digest: dict[str, Any], duplicate: int) -> dict[str, Any]:
        """{"file_id", "preupload_id", "reuse", "slice_size", "server"}; reuse (an instant upload: nothing to send)
        only with a file id."""
        check_name(filename, "filename")
        if digest["size"] > MAX_FILE_SIZE:
            problem = f"is over 123pan's limit of {MAX_FILE_SIZE} bytes"
            raise UploadRejected(f"the file {problem}", details=[{"field": "size", "problem": problem}])
        body = {
            "parentFileID": parent_id,
            "filename": filename,
            "etag": digest["md5"],
            "size": digest["size"],
            "duplicate": duplicate,
        }
        return _created(self._call("POST", CREATE_PATH, body=body)["data"])

    def upload_slices(
        self, obj: StoredObject, created: dict[str, Any], digest: dict[str, Any], slice_numbers: list[int]
    ) -> list[int]:
        """Send these slices (1-based), at most slice_concurrency at a time, each retried on its own; the numbers
        sent. The first failure (once the slices under way have ended) is raised."""
        numbers = sorted(set(slice_numbers))
        count = 0 if created["reuse"] else slice_count(obj.size, created["slice_size"])
        if any(not 1 <= number <= count for number in numbers):
            raise ValueError(f"slice numbers must be from 1 to {count} for this upload, not {numbers}")
        if not numbers:
            return []
        pool = ThreadPoolExecutor(max_workers=min(self.slice_concurrency, len(numbers)))
        try:
            sending = [pool.submit(self._send_slice, obj, created, digest, number) for number in numbers]
            for sent in as_completed(sending):
                sent.result()
        finally:
            pool.shutdown(cancel_futures=True)
        return numbers

    def complete(self, created: dict[str, Any]) -> int | None:
        """The new file's id once completed, None while the provider still verifies (poll again in 1-2 s)."""
        if created["reuse"]:
            return int(created["file_id"])
        try:
            data = self._call("POST", COMPLETE_PATH, body={"preuploadID": created["preupload_id"]})["data"]
        except SharelinkError as error:
            if error.provider_code == VERIFYING_CODE:
                return None
            if UPLOAD_FAILED in error.message:
                raise UploadRejected(
                    "123pan refused the uploaded content: it does not match the MD5 given at create (文件上传失败)",
                    provider=PROVIDER,
                    provider_code=error.provider_code,
                ) from None
            raise
        file_id = int(data.get("fileID") or 0) if isinstance(data, dict) else 0
        return file_id if file_id and data.get("completed") else None

    def _listed_folder(self, parent_id: int, name: str) -> int | None:
        """The folder of that name in the parent, trashed ones aside (the list has them too)."""
        last_file_id = 0
        while last_file_id != LAST_PAGE:
            params = {"parentFileId": str(parent_id), "limit": str(LIST_PAGE_SIZE), "lastFileId": str(last_file_id)}
            data = self._call("GET", LIST_PATH, params=params)["data"]
            for item in _required(data, "fileList"):
                if item.get("filename") == name and item.get("type") == FOLDER_TYPE and item.get("trashed") == 0:
                    return int(item["fileId"])
            last_file_id = int(_required(data, "lastFileId"))
        return None

    def _mkdir(self, parent_id: int, name: str) -> int:
        try:
            data = self._call("POST", MKDIR_PATH, body={"name": name, "parentID": parent_id})["data"]
        except ProviderRejected as refused:
            if FOLDER_EXISTS not in refused.message:
                raise
            return self._folder_after_clash(parent_id, name)
        return int(_required(data, "dirID"))

    def _folder_after_clash(self, parent_id: int, name: str) -> int:
        """The folder another upload made first, once the list shows it."""
        for pause in CLASH_RELIST_PAUSES_S:
            time.sleep(pause)
            if found := self._listed_folder(parent_id, name):
                return found
        raise ProviderError(f"123pan has a folder {name!r} but does not list it yet", provider=PROVIDER)

    def _send_slice(self, obj: StoredObject, created: dict[str, Any], digest: dict[str, Any], number: int) -> None:
        start = (number - 1) * created["slice_size"]
        length = min(created["slice_size"], obj.size - start)
        if digest["slice_size"] == created["slice_size"]:
            slice_md5 = digest["slice_md5s"][number - 1]
        else:
            slice_md5 = md5_of(read_range(self.s3, obj, start, length))
        fields = [("preuploadID", created["preupload_id"]), ("sliceNo", str(number)), ("sliceMD5", slice_md5)]
        form = Multipart(fields, file_part(self.s3, obj, "slice", f"slice{number}", start, length))
        self._call("POST", SLICE_PATH, form=form, transport=self._slice_transport(created["server"]))

    def _slice_transport(self, server: str) -> HttpTransport:
        """One per upload server, kept for the process's life: its connections are reused."""
        if server not in self._slice_transports:
            self._slice_transports[server] = HttpTransport(
                server,
                provider=PROVIDER,
                timeout_s=self.slice_timeout_s,
                retries=SLICE_RETRIES,
                retry_policy=SLICE_RETRY,
                pool_size=self.slice_concurrency,
            )
        return self._slice_transports[server]

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        form: Multipart | None = None,
        transport: Transport | None = None,
    ) -> dict[str, Any]:
        """The provider module's token handling and error mapping, through its transport or a slice server's."""
        via = transport or self.pan123.transport

        def send(token: str) -> dict[str, Any]:
            headers = {"Authorization": f"Bearer {token}"} | PLATFORM
            return unwrap(via.send(method, path, headers=headers, params=params, body=body, form=form))

        return with_token(self.pan123.tokens, send)


def slice_count(size: int, slice_size: int) -> int:
    return -(-size // slice_size)


def check_name(name: str, field: str) -> None:
    """upload.md's file name rule, also applied to folder names (their own rule is not documented)."""
    problem = _name_problem(name)
    if problem:
        raise UploadRejected(f"{field} {name[:64]!r} {problem}", details=[{"field": field, "problem": problem}])


def _name_problem(name: str) -> str | None:
    if not name.strip(" "):
        return "must not be empty or only spaces"
    if len(name) > MAX_NAME_LENGTH:
        return f"must be under {MAX_NAME_LENGTH + 1} characters"
    if FORBIDDEN_NAME_CHARACTERS & set(name):
        return 'must not hold any of "\\/:*?|><'
    return None


def _created(data: Any) -> dict[str, Any]:
    file_id = int(data.get("fileID") or 0) if isinstance(data, dict) else 0
    if file_id and data.get("reuse"):
        return {"file_id": file_id, "preupload_id": "", "reuse": True, "slice_size": 0, "server": ""}
    servers = _required(data, "servers")
    slice_size = int(_required(data, "sliceSize"))
    if not servers or slice_size < 1 or not _required(data, "preuploadID"):
        raise ProviderError("123pan answered create without a preuploadID, a server or a slice size", provider=PROVIDER)
    return {
        "file_id": 0,
        "preupload_id": str(data["preuploadID"]),
        "reuse": False,
        "slice_size": slice_size,
        "server": str(servers[0]),
    }


def _required(data: Any, name: str) -> Any:
    if not isinstance(data, dict) or data.get(name) is None:
        raise ProviderError(f"123pan answered without {name}", provider=PROVIDER)
    return data[name]
