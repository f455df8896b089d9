"""Simulator of the 123pan (123云盘) open platform's token and share endpoints, written from the provider's docs.

Simulated: POST /api/v1/access_token, POST /api/v1/share/create, GET /api/v1/share/list and
PUT /api/v1/share/list/info, with the HTTP-200 envelope {code, message, data, x-traceID}, the Platform and Bearer
checks, 30-day tokens (at most 3 live per client id; a 4th knocks out the oldest) and per-client rate limits counted
per second of the simulator's clock.

share/list pages a client's shares in ascending shareId: a page holds the first `limit` shares with an id above
lastShareId, and its lastShareId is the id of the page's last share, or -1 when no share follows. Each item carries
what a client needs to recognize a share it created: shareId, shareKey, shareName, sharePwd, expiration, expired
and the traffic settings, as sent or defaulted (plus the counters bytesCharge, previewCount, downloadCount,
saveCount, always 0 here).

Faults besides the common ones: expire_token (every token expires, then the request is handled) and code (answers
HTTP 200 with the envelope's `code`, 1 by default, and `message`, "simulated" by default; nothing is done).

What real clients send, taken as the real server takes it (unconfirmed by the docs; each is a switch, on by default):
- keys_ignore_case: body and query keys match without regard to case ("sharename", "fileidlist", "clientid"), as
  Go's encoding/json does; of two spellings of one key, the later in the body wins.
- token_form_body: the token call also takes a form-encoded body (clientID=...&clientSecret=...).
- jwt_tokens: access tokens are JWT-shaped, as the docs' example ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJl..."):
  base64url header {"alg": "HS256", "typ": "JWT"}, payload {"exp": expiry in epoch seconds, "id": the account's user
  id}, and random bytes for a signature. The simulator still only looks tokens up; False issues opaque tokens.

The simulator's own choices where the docs are silent:
- A missing or wrong Platform header answers code 1 "platform is required"; an unknown or knocked-out token
  answers code 401 "token is invalid", an expired one code 401 "token is expired".
- A body failing validation answers code 1 with a message naming the field. shareExpire and the traffic settings
  must be JSON integers (bools, floats and strings refused); fileIDList ids are plain decimal (no sign, spaces or
  leading zeros); an optional field sent as null counts as absent; unknown fields are ignored.
- Defaults when not sent: sharePwd "", trafficSwitch 1, trafficLimitSwitch 1, trafficLimit 0.
- A permanent share (shareExpire 0) expires at 2099-12-31 23:59:59 +08:00; times are kept to the second.
- share/list and share/list/info each have their own bucket of list_qps per client; the token call has token_qps
  per client (counted once the credentials are right); share/create is unlimited unless create_qps is set.
  Limits apply after authentication and refused calls count too.
- share/list needs limit; lastShareId defaults to 0 and must be >= 0.
- share/list/info naming a share the caller does not own answers code 1 "share not found: <id>" and changes
  nothing; without any traffic setting it succeeds and changes nothing.
- An unknown path or method answers HTTP 404 {"code": 404, "message": "not found"}, outside the envelope.

Uploads (the V2 flow of the docs' upload page), folders and files, each client holding its own drive (root id 0):
- POST /upload/v2/file/create {parentFileID, filename, etag, size, duplicate?, containDir?}. filename: under 256
  characters, none of "\\/:*?|><, not only spaces; etag: 32 lowercase hex digits; size: 0 to MAX_FILE_SIZE (10 GiB);
  duplicate: 1 or 2; containDir: a bool. A failing field answers code 1 naming it. An unknown, trashed or foreign
  parent answers 5066 "文件不存在", a parent that is a file code 1. Instant upload: when the simulator holds content of
  that MD5 and size (from any completed upload, or hold_content()), the answer is reuse: true with a new fileID,
  preuploadID "" and nothing to transfer. Otherwise {fileID: 0, preuploadID, reuse: false, sliceSize, servers: [the
  simulator's own URL]}. A zero-byte file (its etag must be the MD5 of nothing) is always an instant upload.
- POST {server}/upload/v2/file/slice, multipart/form-data preuploadID, sliceNo (1-based), sliceMD5, slice (bytes).
  Code 1 for an unknown (or another client's) preuploadID, a sliceNo out of 1..slice count, a slice that is not
  exactly sliceSize bytes (the last: exactly the rest), and SLICE_MD5_MISMATCH when sliceMD5 is not the bytes' MD5.
  Sending a slice again replaces it (idempotent); once complete has started, only the same bytes are taken again.
  slice_uploads[(preuploadID, sliceNo)] counts the times a slice was taken (answered code 0; a fault's answer or a
  refusal does not count; requests has every arrival).
- POST /upload/v2/file/upload_complete {preuploadID}: code 1 naming the missing slices while some are; then the
  first `verify_polls` calls (default 2) answer code 20103 VERIFYING and the next ones {completed: true, fileID},
  the same fileID on every later call. When the MD5 of the slices in order is not the create's etag, verification
  ends with code `upload_failed_code` (1: the real code is unconfirmed) "文件上传失败", no file is made, and every
  later complete answers the same. The name policy is applied again when the file is made.
- POST /upload/v1/file/mkdir {name, parentID} answers {dirID}; a folder of that name that is not trashed answers
  code 1 "该目录下已经有同名文件夹,无法进行创建" (a file of that name does not clash).
- GET /api/v2/file/list?parentFileId=&limit=1..100&lastFileId= (>= 0, default 0) pages the folder's entries in
  ascending fileId like share/list, trashed ones included (trashed 1); an unknown folder lists empty. Items:
  fileId, filename, type (0 file, 1 folder), size, etag ("" for a folder), status (0), parentFileId, trashed,
  createAt, updateAt ("YYYY-MM-DD HH:MM:SS", UTC+8).
- GET /api/v1/file/detail?fileID= answers fileID, filename, type, size, etag, status, parentFileID, trashed,
  createAt; 5066 for an unknown or another client's id.
- Files and folders made here join `files`, so share/create takes their ids (another client's: 5066; trashed ones
  are taken: unconfirmed). The preset share-only ids (DEFAULT_FILES) are not in any folder.
Switches for what the docs leave open (constructor arguments, or class attributes a test may set on an instance):
- slice_size (16 MiB), verify_polls (2), instant_upload (True), list_lag (0: a fresh folder, made by mkdir or
  containDir, is left out of its parent's next `list_lag` listings by its owner: eventual consistency),
  upload_qps (None: per-client QPS by bucket, any of UPLOAD_BUCKETS; over it code 429 "请求太频繁"; refused calls
  count too), small_content_limit (1 MiB: files under it keep their bytes, for content_of()).
- default_duplicate (None: a name clash without duplicate answers code 1 NAME_TAKEN, the simulator's choice; 1 or 2
  applies that policy instead). duplicate 1 keeps both, the new one named "name(1).ext" (the first free number),
  2 moves the old file(s) of that name to the trash. Only files clash with files.
- contain_dir_creates_folders (True): with containDir, filename is a path ("/a/b/c.mp4") whose folders are found
  (not trashed) or created under parentFileID at create; False takes containDir as a plain flag.
- upload_failed_code (1).
Memory: a slice's bytes are written at their offset into a spool file per upload in a temporary directory (made by
the first create that needs slices, removed by reset(), stop() or garbage collection), and never kept in `requests`
(multipart bodies are recorded as {filename, size, md5}: base.py). Complete hashes the spool file in 1 MiB reads
on a thread, outside the state lock, then deletes it; a file keeps only its MD5 and size (and its bytes when under
small_content_limit). The call that ends the polls waits for that hash, so it is deterministic however large the
file. preuploadIDs do not expire.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import secrets
import string
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl

from local.simulators.base import (
    COMMON_FAULT_KINDS,
    Fault,
    Form,
    FormPart,
    Refusal,
    Response,
    SimServer,
    json_response,
)

BEIJING = timezone(timedelta(hours=8))
TOKEN_LIFETIME = timedelta(days=30)
MAX_LIVE_TOKENS = 3
FIRST_SHARE_ID = 87187530
PERMANENT_EXPIRATION = datetime(2099, 12, 31, 23, 59, 59, tzinfo=BEIJING)
SHARE_EXPIRE_DAYS = (0, 1, 7, 30)
SHARE_KEY_ALPHABET = string.ascii_letters + string.digits + "-"
MAX_IDS = 100
DOCS_EXAMPLE_FILES = (14713526, 10861131)  # share-create.md's example fileIDList
NUMBERED_FILES = range(1, 1001)
DEFAULT_FILES = frozenset({*DOCS_EXAMPLE_FILES, *NUMBERED_FILES})
TRAFFIC_RANGES: dict[str, tuple[int, int | None]] = {
    "trafficSwitch": (1, 4),
    "trafficLimitSwitch": (1, 2),
    "trafficLimit": (0, None),
}
TRAFFIC_DEFAULTS = {"trafficSwitch": 1, "trafficLimitSwitch": 1, "trafficLimit": 0}
LIST_ITEM_FIELDS = (
    "shareId", "shareKey", "shareName", "sharePwd", *TRAFFIC_DEFAULTS,
    "bytesCharge", "previewCount", "downloadCount", "saveCount",
)  # fmt: skip
FILE_ID = re.compile(r"[1-9][0-9]*")
RATE_LIMITED = "请求太频繁"
LOGIN_PATH = "/api/v1/access_token"  # the token call
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
JWT_HEADER = {"alg": "HS256", "typ": "JWT"}
FIRST_USER_ID = 1814435971
UPLOAD_CREATE_PATH = "/upload/v2/file/create"
SLICE_PATH = "/upload/v2/file/slice"
COMPLETE_PATH = "/upload/v2/file/upload_complete"
MKDIR_PATH = "/upload/v1/file/mkdir"
FILE_LIST_PATH = "/api/v2/file/list"
FILE_DETAIL_PATH = "/api/v1/file/detail"
MIB = 1024**2
MAX_FILE_SIZE = 10 * 1024**3
DEFAULT_SLICE_SIZE = 16 * MIB
SMALL_CONTENT_LIMIT = MIB
HASH_CHUNK = MIB
FIRST_ENTRY_ID = 30_000_001  # files and folders made here, above every preset id
ROOT_FOLDER = 0
MAX_NAME_LENGTH = 255
FORBIDDEN_NAME_CHARS = frozenset('"\\/:*?|><')
MD5_HEX = re.compile(r"[0-9a-f]{32}")
EMPTY_MD5 = hashlib.md5(b"", usedforsecurity=False).hexdigest()
VERIFYING_CODE = 20103
VERIFYING = "文件正在校验中,请间隔1秒后再试"
UPLOAD_FAILED = "文件上传失败"
NAME_TAKEN = "文件名重复"
FOLDER_TAKEN = "该目录下已经有同名文件夹,无法进行创建"
SLICE_MD5_MISMATCH = "分片MD5校验失败"
FILE_NOT_FOUND = "文件不存在"
UPLOAD_BUCKETS = frozenset({"create", "slice", "upload_complete", "mkdir", "file/list", "file/detail"})
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
# Body and query keys by their lower-case spelling, for keys_ignore_case.
KEY_SPELLINGS = {
    name.lower(): name
    for name in (
        "clientID", "clientSecret", "shareName", "shareExpire", "fileIDList", "sharePwd", *TRAFFIC_DEFAULTS,
        "shareIdList", "limit", "lastShareId", "parentFileID", "filename", "etag", "size", "duplicate", "containDir",
        "preuploadID", "sliceNo", "sliceMD5", "slice", "name", "parentID", "fileID", "lastFileId",
    )
}  # fmt: skip
# Where one endpoint spells a key otherwise (the file list's query says parentFileId).
PATH_KEY_SPELLINGS = {FILE_LIST_PATH: {"parentfileid": "parentFileId"}}

type Route = Callable[[dict[str, str], dict[str, str], Any], Any]


@dataclass
class _Token:
    value: str
    client_id: str
    expires_at: datetime
    knocked_out: bool = False
    force_expired: bool = False

    def is_live(self, now: datetime) -> bool:
        return not self.knocked_out and not self.force_expired and now < self.expires_at


@dataclass
class _Entry:
    """A file or folder of a client's drive."""

    file_id: int
    client_id: str
    parent_id: int
    filename: str
    is_folder: bool
    size: int
    etag: str
    created: datetime
    updated: datetime
    trashed: bool = False
    status: int = 0
    hidden_lists: int = 0  # list_lag: how many more listings of its parent leave it out

    def item(self) -> dict[str, Any]:
        return {
            "fileId": self.file_id,
            "filename": self.filename,
            "type": int(self.is_folder),
            "size": self.size,
            "etag": self.etag,
            "status": self.status,
            "parentFileId": self.parent_id,
            "trashed": int(self.trashed),
            "createAt": self.created.astimezone(BEIJING).strftime(TIME_FORMAT),
            "updateAt": self.updated.astimezone(BEIJING).strftime(TIME_FORMAT),
        }


@dataclass
class _Upload:
    """A create that awaits its slices and its completion."""

    preupload_id: str
    client_id: str
    parent_id: int
    filename: str
    etag: str
    size: int
    duplicate: int | None
    slice_size: int
    spool: str
    slice_md5: dict[int, str] = field(default_factory=dict)
    polls: int = 0
    verifier: threading.Thread | None = None
    verified: threading.Event = field(default_factory=threading.Event)
    digest: str | None = None
    small_content: bytes | None = None
    outcome: int | Refusal | None = None  # the fileID made, or the refusal verification ended with

    @property
    def slice_count(self) -> int:
        return -(-self.size // self.slice_size)

    def slice_length(self, number: int) -> int:
        return min(self.slice_size, self.size - (number - 1) * self.slice_size)

    def hash_spool(self, small_content_limit: int) -> None:
        """The MD5 of the slices in order, read back from the spool file (None when it cannot be read)."""
        digest = hashlib.md5(usedforsecurity=False)
        kept = bytearray()
        try:
            with open(self.spool, "rb") as spool:
                remaining = self.size
                while remaining:
                    chunk = spool.read(min(HASH_CHUNK, remaining))
                    if not chunk:
                        raise OSError("the spool file is shorter than the upload")
                    digest.update(chunk)
                    if self.size < small_content_limit:
                        kept += chunk
                    remaining -= len(chunk)
            self.digest = digest.hexdigest()
            self.small_content = bytes(kept) if self.size < small_content_limit else None
        except OSError:
            self.digest = None
        finally:
            self.verified.set()


class Pan123Simulator(SimServer):
    fault_kinds = COMMON_FAULT_KINDS | {"expire_token", "code"}
    rate_limit_message = RATE_LIMITED
    # Switches for behaviours the docs leave open (see the module docstring); set on an instance to change them.
    default_duplicate: int | None = None
    contain_dir_creates_folders = True
    upload_failed_code = 1

    def __init__(
        self,
        *,
        clients: dict[str, str] | None = None,
        files: Iterable[int] | None = None,
        list_qps: int = 10,
        token_qps: int = 8,
        create_qps: int | None = None,
        keys_ignore_case: bool = True,
        token_form_body: bool = True,
        jwt_tokens: bool = True,
        slice_size: int = DEFAULT_SLICE_SIZE,
        verify_polls: int = 2,
        instant_upload: bool = True,
        list_lag: int = 0,
        upload_qps: dict[str, int] | None = None,
        small_content_limit: int = SMALL_CONTENT_LIMIT,
    ) -> None:
        if slice_size < 1 or verify_polls < 0 or list_lag < 0:
            raise ValueError("slice_size must be positive, verify_polls and list_lag not negative")
        if unknown := set(upload_qps or {}) - UPLOAD_BUCKETS:
            raise ValueError(f"unknown upload_qps buckets {sorted(unknown)}, expected some of {sorted(UPLOAD_BUCKETS)}")
        super().__init__()
        self.clients = {"sim-client": "sim-secret"} if clients is None else dict(clients)
        self._preset_files = DEFAULT_FILES if files is None else frozenset(files)
        # Ids share/create takes: the preset ones plus every file and folder made here.
        self.files: set[int] = set(self._preset_files)
        self.list_qps, self.token_qps, self.create_qps = list_qps, token_qps, create_qps
        self.keys_ignore_case, self.token_form_body, self.jwt_tokens = keys_ignore_case, token_form_body, jwt_tokens
        self.slice_size, self.verify_polls, self.instant_upload = slice_size, verify_polls, instant_upload
        self.list_lag, self.upload_qps = list_lag, dict(upload_qps or {})
        self.small_content_limit = small_content_limit
        # Every file and folder made here, by id.
        self.entries: dict[int, _Entry] = {}
        # Content the provider holds, for instant uploads: (md5, size) -> its bytes when small, else None.
        self.contents: dict[tuple[str, int], bytes | None] = {}
        self.uploads: dict[str, _Upload] = {}
        # (preuploadID, sliceNo) -> how many times that slice was taken.
        self.slice_uploads: dict[tuple[str, int], int] = {}
        self._next_entry_id = FIRST_ENTRY_ID
        self._spool_dir: tempfile.TemporaryDirectory[str] | None = None
        # Share id -> the list item fields plus shareExpire, expiration (an aware datetime), fileIds and clientId.
        self.shares: dict[int, dict[str, Any]] = {}
        self._state_lock = threading.RLock()
        self._tokens: dict[str, _Token] = {}
        self._rate_windows: dict[tuple[str, str], tuple[int, int]] = {}
        self._next_share_id = FIRST_SHARE_ID
        self._routes: dict[tuple[str, str], Route] = {
            ("POST", LOGIN_PATH): self._access_token,
            ("POST", "/api/v1/share/create"): self._share_create,
            ("GET", "/api/v1/share/list"): self._share_list,
            ("PUT", "/api/v1/share/list/info"): self._share_list_info,
            ("POST", UPLOAD_CREATE_PATH): self._upload_create,
            ("POST", SLICE_PATH): self._upload_slice,
            ("POST", COMPLETE_PATH): self._upload_complete,
            ("POST", MKDIR_PATH): self._mkdir,
            ("GET", FILE_LIST_PATH): self._file_list,
            ("GET", FILE_DETAIL_PATH): self._file_detail,
        }
        # Routes that take the state lock themselves (complete waits for a hash without holding it).
        self._self_locking = {COMPLETE_PATH}

    # --- helpers for tests

    def issue_token(self, client_id: str = "sim-client") -> str:
        if client_id not in self.clients:
            raise ValueError(f"unknown client id {client_id!r}")
        with self._state_lock:
            return self._issue(client_id).value

    def expire_tokens(self) -> None:
        with self._state_lock:
            for token in self._tokens.values():
                token.force_expired = True

    def live_tokens(self, client_id: str = "sim-client") -> list[str]:
        with self._state_lock:
            return [token.value for token in self._live_tokens(client_id)]

    def secret_values(self) -> set[str]:
        with self._state_lock:
            return set(self._tokens) | set(self.clients.values())

    def hold_content(self, md5: str, size: int, data: bytes | None = None) -> None:
        """Make the provider hold content of that MD5 and size, so that a create of it is an instant upload."""
        if not MD5_HEX.fullmatch(md5) or size < 0:
            raise ValueError("md5 must be 32 lowercase hex digits and size not negative")
        with self._state_lock:
            self.contents[md5, size] = data

    def make_folder(self, path: str, client_id: str = "sim-client") -> int:
        """The id of the folder at `path` ("/a/b"), made (not listed late) with the folders above it as needed."""
        if client_id not in self.clients:
            raise ValueError(f"unknown client id {client_id!r}")
        with self._state_lock:
            folder_id = ROOT_FOLDER
            for name in _path_names(path):
                found = self._child_folder(client_id, folder_id, name)
                folder_id = found.file_id if found else self._new_entry(client_id, folder_id, name, None).file_id
            return folder_id

    def find(self, path: str, client_id: str = "sim-client") -> dict[str, Any] | None:
        """The list item of the file or folder at `path` ("/a/b/c.txt"), trashed ones aside; None when none."""
        with self._state_lock:
            entry = self._entry_at(client_id, _path_names(path))
            return None if entry is None else entry.item()

    def files_in(
        self, path: str = "/", client_id: str = "sim-client", *, trashed: bool = False
    ) -> list[dict[str, Any]]:
        """The list items of the folder at `path` in id order, trashed ones only when `trashed`."""
        with self._state_lock:
            names = _path_names(path)
            folder = self._entry_at(client_id, names) if names else None
            if names and (folder is None or not folder.is_folder):
                raise ValueError(f"no folder at {path!r}")
            folder_id = ROOT_FOLDER if folder is None else folder.file_id
            return [entry.item() for entry in self._children(client_id, folder_id) if trashed or not entry.trashed]

    def content_of(self, file_id: int) -> bytes | None:
        """The bytes of a file made here, when it is small enough to keep them (small_content_limit)."""
        with self._state_lock:
            entry = self.entries[file_id]
            return None if entry.is_folder else self.contents.get((entry.etag, entry.size))

    def trash(self, file_id: int) -> None:
        """Move a file or folder to the trash, as the web client would: it stays listed, with trashed 1."""
        with self._state_lock:
            entry = self.entries[file_id]
            entry.trashed, entry.updated = True, self.clock.now()

    def stop(self) -> None:
        super().stop()
        with self._state_lock:
            self._drop_spool()

    def reset(self) -> None:
        super().reset()
        with self._state_lock:
            self.shares.clear()
            self._tokens.clear()
            self._rate_windows.clear()
            self._next_share_id = FIRST_SHARE_ID
            self.files = set(self._preset_files)
            for state in (self.entries, self.contents, self.uploads, self.slice_uploads):
                state.clear()
            self._next_entry_id = FIRST_ENTRY_ID
            self._drop_spool()

    # --- SimServer hooks

    def envelope(self, code: int, message: str, data: Any = None) -> dict[str, Any]:
        return {"code": code, "message": message, "data": data, "x-traceID": f"{uuid.uuid4()}_kong-sim"}

    def apply_fault(self, fault: Fault) -> Response | None:
        match fault.kind:
            case "expire_token":
                self.expire_tokens()
                return None
            case "code":
                code, message = int(fault.options.get("code", 1)), str(fault.options.get("message", "simulated"))
                return json_response(200, self.envelope(code, message))
        return super().apply_fault(fault)

    def handle(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: Any) -> Response:
        route = self._routes.get((method, path))
        if route is None:
            return json_response(404, {"code": 404, "message": "not found"})
        lowered = {name.lower(): value for name, value in headers.items()}
        query, body = self._as_read(path, lowered, query, body)
        try:
            if lowered.get("platform") != "open_platform":
                raise Refusal(1, "platform is required")
            if path in self._self_locking:
                data = route(query, lowered, body)
            else:
                with self._state_lock:
                    data = route(query, lowered, body)
        except Refusal as refusal:
            return json_response(200, self.envelope(refusal.code, refusal.message))
        return json_response(200, self.envelope(0, "ok", data))

    def _as_read(
        self, path: str, headers: dict[str, str], query: dict[str, str], body: Any
    ) -> tuple[dict[str, str], Any]:
        """Query and body as the server reads them: a form-encoded token call decoded, keys in their usual spelling."""
        form = headers.get("content-type", "").startswith(FORM_CONTENT_TYPE)
        if path == LOGIN_PATH and self.token_form_body and form and isinstance(body, str):
            body = dict(parse_qsl(body))
        if isinstance(body, Form):  # multipart: {field name: its last part}
            body = _FormFields((part.name, part) for part in body.parts)
        if self.keys_ignore_case:
            query = _usual_spelling(query, path)
            body = _usual_spelling(body, path) if isinstance(body, dict) else body
        return query, body

    # --- endpoints

    def _access_token(self, query: dict[str, str], headers: dict[str, str], body: Any) -> Any:
        body = _require_object(body)
        client_id = body.get("clientID")
        secret = self.clients.get(client_id) if isinstance(client_id, str) else None
        if secret is None or body.get("clientSecret") != secret:
            raise Refusal(401, "clientID or clientSecret invalid")
        self._count_call("access_token", client_id, self.token_qps)
        token = self._issue(client_id)
        return {"accessToken": token.value, "expiredAt": token.expires_at.astimezone(BEIJING).isoformat()}

    def _share_create(self, query: dict[str, str], headers: dict[str, str], body: Any) -> Any:
        client_id = self._authenticate(headers)
        self._count_call("share/create", client_id, self.create_qps)
        body = _require_object(body)
        name = body.get("shareName")
        if not isinstance(name, str) or not name.strip():
            raise Refusal(1, "shareName must be a non-empty string")
        expire_days = body.get("shareExpire")
        if not _is_int(expire_days) or expire_days not in SHARE_EXPIRE_DAYS:
            raise Refusal(1, "shareExpire must be one of 0, 1, 7, 30")
        file_ids = _parse_file_ids(body.get("fileIDList"))
        password = body.get("sharePwd")
        if password is not None and not isinstance(password, str):
            raise Refusal(1, "sharePwd must be a string")
        traffic = _traffic_settings(body)
        if not self.files.issuperset(file_ids) or any(
            file_id in self.entries and self.entries[file_id].client_id != client_id for file_id in file_ids
        ):
            raise Refusal(5066, FILE_NOT_FOUND)
        share = self._store_share(client_id, name, expire_days, file_ids, password or "", traffic)
        return {"shareID": share["shareId"], "shareKey": share["shareKey"]}

    def _share_list(self, query: dict[str, str], headers: dict[str, str], body: Any) -> Any:
        client_id = self._authenticate(headers)
        self._count_call("share/list", client_id, self.list_qps)
        limit = _query_int(query, "limit", 1, MAX_IDS)
        after = _query_int(query, "lastShareId", 0, None, default=0)
        remaining = [
            share
            for share_id, share in sorted(self.shares.items())
            if share_id > after and share["clientId"] == client_id
        ]
        page = remaining[:limit]
        now = self.clock.now()
        return {
            "lastShareId": page[-1]["shareId"] if len(remaining) > limit else -1,
            "shareList": [_list_item(share, now) for share in page],
        }

    def _share_list_info(self, query: dict[str, str], headers: dict[str, str], body: Any) -> Any:
        client_id = self._authenticate(headers)
        self._count_call("share/list/info", client_id, self.list_qps)
        body = _require_object(body)
        share_ids = body.get("shareIdList")
        if not isinstance(share_ids, list) or not 1 <= len(share_ids) <= MAX_IDS:
            raise Refusal(1, f"shareIdList must be a list of 1 to {MAX_IDS} share ids")
        if not all(_is_int(share_id) and share_id > 0 for share_id in share_ids):
            raise Refusal(1, "shareIdList must hold positive integer share ids")
        settings = _traffic_settings(body)
        for share_id in share_ids:
            if self.shares.get(share_id, {}).get("clientId") != client_id:
                raise Refusal(1, f"share not found: {share_id}")
        for share_id in share_ids:
            self.shares[share_id].update(settings)
        return None

    # --- upload, folder and file endpoints

    def _upload_create(self, query: dict[str, str], headers: dict[str, str], body: Any) -> Any:
        client_id = self._authenticate(headers)
        self._count_upload_call("create", client_id)
        body = _require_object(body)
        parent_id = _body_int(body, "parentFileID", 0, None)
        contain_dir = body.get("containDir")
        if contain_dir is not None and not isinstance(contain_dir, bool):
            raise Refusal(1, "containDir must be a boolean")
        filename = body.get("filename")
        if not isinstance(filename, str):
            raise Refusal(1, "filename must be a string")
        names = filename.strip("/").split("/") if contain_dir and self.contain_dir_creates_folders else [filename]
        for name in names:
            _check_name(name, "filename")
        etag = body.get("etag")
        if not isinstance(etag, str) or not MD5_HEX.fullmatch(etag):
            raise Refusal(1, "etag must be the file's MD5 as 32 lowercase hex digits")
        size = _body_int(body, "size", 0, None)
        if size > MAX_FILE_SIZE:
            raise Refusal(1, f"size {size} is over the limit of 10 GiB ({MAX_FILE_SIZE} bytes) for one file")
        if size == 0 and etag != EMPTY_MD5:
            raise Refusal(1, f"etag of an empty file must be {EMPTY_MD5}")
        duplicate = body.get("duplicate")
        if duplicate is not None and (not _is_int(duplicate) or duplicate not in (1, 2)):
            raise Refusal(1, "duplicate must be 1 (keep both) or 2 (overwrite)")
        self._folder(client_id, parent_id)
        for name in names[:-1]:
            found = self._child_folder(client_id, parent_id, name)
            parent_id = found.file_id if found else self._new_entry(client_id, parent_id, name, None).file_id
        filename = names[-1]
        self._placement(client_id, parent_id, filename, duplicate)
        if size == 0 or (self.instant_upload and (etag, size) in self.contents):
            entry = self._make_file(client_id, parent_id, filename, duplicate, etag, size)
            return {
                "fileID": entry.file_id,
                "preuploadID": "",
                "reuse": True,
                "sliceSize": self.slice_size,
                "servers": [self.url],
            }
        upload = _Upload(
            secrets.token_hex(24), client_id, parent_id, filename, etag, size, duplicate, self.slice_size, ""
        )
        upload.spool = os.path.join(self._spool_path(), f"{len(self.uploads)}-{upload.preupload_id[:8]}.part")
        self.uploads[upload.preupload_id] = upload
        return {
            "fileID": 0,
            "preuploadID": upload.preupload_id,
            "reuse": False,
            "sliceSize": upload.slice_size,
            "servers": [self.url],
        }

    def _upload_slice(self, query: dict[str, str], headers: dict[str, str], body: Any) -> Any:
        client_id = self._authenticate(headers)
        self._count_upload_call("slice", client_id)
        if not isinstance(body, _FormFields):
            raise Refusal(1, "the slice must be sent as multipart/form-data")
        upload = self._own_upload(client_id, _form_text(body, "preuploadID"))
        number_text = _form_text(body, "sliceNo")
        count = upload.slice_count
        if not FILE_ID.fullmatch(number_text) or int(number_text) > count:
            raise Refusal(1, f"sliceNo must be an integer from 1 to {count}")
        number = int(number_text)
        part = body.get("slice")
        if part is None:
            raise Refusal(1, "slice is required")
        expected = upload.slice_length(number)
        if len(part.data) != expected:
            raise Refusal(1, f"slice {number} must hold {expected} bytes, not {len(part.data)}")
        if _form_text(body, "sliceMD5") != part.md5:
            raise Refusal(1, SLICE_MD5_MISMATCH)
        if upload.verifier is not None:
            if upload.slice_md5.get(number) != part.md5:
                raise Refusal(1, "the upload is being completed: its slices can no longer change")
        else:
            descriptor = os.open(upload.spool, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                os.pwrite(descriptor, part.data, (number - 1) * upload.slice_size)
            finally:
                os.close(descriptor)
            upload.slice_md5[number] = part.md5
        key = (upload.preupload_id, number)
        self.slice_uploads[key] = self.slice_uploads.get(key, 0) + 1
        return None

    def _upload_complete(self, query: dict[str, str], headers: dict[str, str], body: Any) -> Any:
        with self._state_lock:
            client_id = self._authenticate(headers)
            self._count_upload_call("upload_complete", client_id)
            upload = self._own_upload(client_id, _require_object(body).get("preuploadID"))
            if upload.outcome is None:
                missing = [number for number in range(1, upload.slice_count + 1) if number not in upload.slice_md5]
                if missing:
                    shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
                    raise Refusal(1, f"slices not uploaded yet: {shown}")
                if upload.verifier is None:
                    limit = self.small_content_limit
                    upload.verifier = threading.Thread(target=upload.hash_spool, args=(limit,), daemon=True)
                    upload.verifier.start()
                if upload.polls < self.verify_polls:
                    upload.polls += 1
                    raise Refusal(VERIFYING_CODE, VERIFYING)
        upload.verified.wait()
        with self._state_lock:
            if self.uploads.get(upload.preupload_id) is not upload:  # reset while verifying
                raise Refusal(1, "preuploadID is unknown")
            if upload.outcome is None:
                upload.outcome = self._finish(upload)
            if isinstance(upload.outcome, Refusal):
                raise upload.outcome
            return {"completed": True, "fileID": upload.outcome}

    def _mkdir(self, query: dict[str, str], headers: dict[str, str], body: Any) -> Any:
        client_id = self._authenticate(headers)
        self._count_upload_call("mkdir", client_id)
        body = _require_object(body)
        name = body.get("name")
        _check_name(name, "name")
        parent_id = _body_int(body, "parentID", 0, None)
        self._folder(client_id, parent_id)
        if self._child_folder(client_id, parent_id, name) is not None:
            raise Refusal(1, FOLDER_TAKEN)
        return {"dirID": self._new_entry(client_id, parent_id, name, None, hidden_lists=self.list_lag).file_id}

    def _file_list(self, query: dict[str, str], headers: dict[str, str], body: Any) -> Any:
        client_id = self._authenticate(headers)
        self._count_upload_call("file/list", client_id)
        parent_id = _query_int(query, "parentFileId", 0, None)
        limit = _query_int(query, "limit", 1, MAX_IDS)
        after = _query_int(query, "lastFileId", 0, None, default=0)
        visible = []
        for entry in self._children(client_id, parent_id):
            if entry.hidden_lists:
                entry.hidden_lists -= 1
            else:
                visible.append(entry)
        remaining = [entry for entry in visible if entry.file_id > after]
        page = remaining[:limit]
        return {
            "lastFileId": page[-1].file_id if len(remaining) > limit else -1,
            "fileList": [entry.item() for entry in page],
        }

    def _file_detail(self, query: dict[str, str], headers: dict[str, str], body: Any) -> Any:
        client_id = self._authenticate(headers)
        self._count_upload_call("file/detail", client_id)
        entry = self.entries.get(_query_int(query, "fileID", 1, None))
        if entry is None or entry.client_id != client_id:
            raise Refusal(5066, FILE_NOT_FOUND)
        item = entry.item()
        return {
            "fileID": entry.file_id,
            **{name: item[name] for name in ("filename", "type", "size", "etag", "status")},
            "parentFileID": entry.parent_id,
            "trashed": item["trashed"],
            "createAt": item["createAt"],
        }

    # --- state

    def _live_tokens(self, client_id: str) -> list[_Token]:
        now = self.clock.now()
        return [token for token in self._tokens.values() if token.client_id == client_id and token.is_live(now)]

    def _issue(self, client_id: str) -> _Token:
        live = self._live_tokens(client_id)
        for oldest in live[: max(0, len(live) - MAX_LIVE_TOKENS + 1)]:
            oldest.knocked_out = True
        expires_at = (self.clock.now() + TOKEN_LIFETIME).replace(microsecond=0)
        token = _Token(self._new_token_value(client_id, expires_at), client_id, expires_at)
        self._tokens[token.value] = token
        return token

    def _new_token_value(self, client_id: str, expires_at: datetime) -> str:
        if not self.jwt_tokens:
            return secrets.token_urlsafe(36)
        claims = {"exp": int(expires_at.timestamp()), "id": FIRST_USER_ID + list(self.clients).index(client_id)}
        parts = (_compact_json(JWT_HEADER), _compact_json(claims), secrets.token_bytes(32))
        return ".".join(base64.urlsafe_b64encode(part).rstrip(b"=").decode("ascii") for part in parts)

    def _authenticate(self, headers: dict[str, str]) -> str:
        scheme, _, value = headers.get("authorization", "").partition(" ")
        token = self._tokens.get(value) if scheme == "Bearer" else None
        if token is None or token.knocked_out:
            raise Refusal(401, "token is invalid")
        if not token.is_live(self.clock.now()):
            raise Refusal(401, "token is expired")
        return token.client_id

    def _count_upload_call(self, bucket: str, client_id: str) -> None:
        self._count_call(f"upload:{bucket}", client_id, self.upload_qps.get(bucket))

    def _count_call(self, bucket: str, client_id: str, qps: int | None) -> None:
        if qps is None:
            return
        second = int(self.clock.now().timestamp())
        window_second, count = self._rate_windows.get((bucket, client_id), (second, 0))
        count = count + 1 if window_second == second else 1
        self._rate_windows[bucket, client_id] = (second, count)
        if count > qps:
            raise Refusal(429, RATE_LIMITED)

    def _spool_path(self) -> str:
        if self._spool_dir is None:
            self._spool_dir = tempfile.TemporaryDirectory(prefix="pan123-sim-")
        return self._spool_dir.name

    def _drop_spool(self) -> None:
        if self._spool_dir is not None:
            self._spool_dir.cleanup()
            self._spool_dir = None

    def _own_upload(self, client_id: str, preupload_id: Any) -> _Upload:
        upload = self.uploads.get(preupload_id) if isinstance(preupload_id, str) else None
        if upload is None or upload.client_id != client_id:
            raise Refusal(1, "preuploadID is unknown")
        return upload

    def _finish(self, upload: _Upload) -> int | Refusal:
        """What a verified upload ends in: the new file's id, or the refusal; its spool file goes."""
        with contextlib.suppress(OSError):
            os.remove(upload.spool)
        if upload.digest != upload.etag:
            return Refusal(self.upload_failed_code, UPLOAD_FAILED)
        if upload.small_content is not None or (upload.etag, upload.size) not in self.contents:
            self.contents[upload.etag, upload.size] = upload.small_content
        try:
            entry = self._make_file(
                upload.client_id, upload.parent_id, upload.filename, upload.duplicate, upload.etag, upload.size
            )
        except Refusal as refusal:
            return refusal
        return entry.file_id

    def _make_file(
        self, client_id: str, parent_id: int, filename: str, duplicate: int | None, etag: str, size: int
    ) -> _Entry:
        name, replaced = self._placement(client_id, parent_id, filename, duplicate)
        for old in replaced:
            old.trashed, old.updated = True, self.clock.now()
        self.contents.setdefault((etag, size), b"" if size == 0 else None)
        return self._new_entry(client_id, parent_id, name, (etag, size))

    def _placement(
        self, client_id: str, parent_id: int, filename: str, duplicate: int | None
    ) -> tuple[str, list[_Entry]]:
        """The name a new file gets in the folder and the files it overwrites, by the duplicate policy."""
        files = [entry for entry in self._children(client_id, parent_id) if not entry.trashed and not entry.is_folder]
        clashing = [entry for entry in files if entry.filename == filename]
        if not clashing:
            return filename, []
        policy = self.default_duplicate if duplicate is None else duplicate
        if policy == 2:
            return filename, clashing
        if policy != 1:
            raise Refusal(1, NAME_TAKEN)
        taken = {entry.filename for entry in files}
        stem, extension = os.path.splitext(filename)
        number = 1
        while f"{stem}({number}){extension}" in taken:
            number += 1
        return f"{stem}({number}){extension}", []

    def _new_entry(
        self, client_id: str, parent_id: int, name: str, content: tuple[str, int] | None, hidden_lists: int = 0
    ) -> _Entry:
        """A new folder (content None) or file (content (md5, size)), whose id share/create then takes."""
        now = self.clock.now()
        etag, size = content or ("", 0)
        entry = _Entry(self._next_entry_id, client_id, parent_id, name, content is None, size, etag, now, now)
        entry.hidden_lists = hidden_lists
        self._next_entry_id += 1
        self.entries[entry.file_id] = entry
        self.files.add(entry.file_id)
        return entry

    def _children(self, client_id: str, folder_id: int) -> list[_Entry]:
        return [
            entry
            for _, entry in sorted(self.entries.items())
            if entry.parent_id == folder_id and entry.client_id == client_id
        ]

    def _child_folder(self, client_id: str, folder_id: int, name: str) -> _Entry | None:
        for entry in self._children(client_id, folder_id):
            if entry.is_folder and not entry.trashed and entry.filename == name:
                return entry
        return None

    def _entry_at(self, client_id: str, names: list[str]) -> _Entry | None:
        entry: _Entry | None = None
        for name in names:
            folder_id = ROOT_FOLDER if entry is None else entry.file_id
            if entry is not None and not entry.is_folder:
                return None
            children = self._children(client_id, folder_id)
            entry = next((child for child in children if not child.trashed and child.filename == name), None)
            if entry is None:
                return None
        return entry

    def _folder(self, client_id: str, folder_id: int) -> None:
        """Refuse a parent that is not one of the client's folders (0, the root, always is)."""
        if folder_id == ROOT_FOLDER:
            return
        entry = self.entries.get(folder_id)
        if entry is None or entry.client_id != client_id or entry.trashed:
            raise Refusal(5066, FILE_NOT_FOUND)
        if not entry.is_folder:
            raise Refusal(1, f"parent {folder_id} is not a folder")

    def _store_share(
        self, client_id: str, name: str, expire_days: int, file_ids: list[int], password: str, traffic: dict[str, int]
    ) -> dict[str, Any]:
        now = self.clock.now().replace(microsecond=0)
        share_id, self._next_share_id = self._next_share_id, self._next_share_id + 1
        self.shares[share_id] = {
            "shareId": share_id,
            "shareKey": self._new_share_key(),
            "shareName": name,
            "shareExpire": expire_days,
            "expiration": PERMANENT_EXPIRATION if expire_days == 0 else now + timedelta(days=expire_days),
            "sharePwd": password,
            **TRAFFIC_DEFAULTS,
            **traffic,
            "fileIds": file_ids,
            "bytesCharge": 0,
            "previewCount": 0,
            "downloadCount": 0,
            "saveCount": 0,
            "clientId": client_id,
        }
        return self.shares[share_id]

    def _new_share_key(self) -> str:
        taken = {share["shareKey"] for share in self.shares.values()}
        while True:
            key = "".join(secrets.choice(SHARE_KEY_ALPHABET) for _ in range(12))
            if key not in taken:
                return key


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _FormFields(dict[str, FormPart]):
    """A multipart body as the endpoints read it: field name -> its last part."""


def _usual_spelling[Fields: dict[str, Any]](fields: Fields, path: str = "") -> Fields:
    spellings = KEY_SPELLINGS | PATH_KEY_SPELLINGS.get(path, {})
    respelled = type(fields)()
    for key, value in fields.items():
        respelled[spellings.get(key.lower(), key)] = value
    return respelled


def _form_text(form: dict[str, FormPart], name: str) -> str:
    part = form.get(name)
    text = None if part is None else part.text()
    if text is None:
        raise Refusal(1, f"{name} is required as a text field")
    return text


def _body_int(body: dict[str, Any], name: str, low: int, high: int | None) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < low or (high is not None and value > high):
        raise Refusal(1, f"{name} must be {_range_text(low, high)}")
    return value


def _check_name(name: Any, field_name: str) -> None:
    if not isinstance(name, str) or not name.strip(" "):
        raise Refusal(1, f"{field_name} must be a name that is not empty or only spaces")
    if len(name) > MAX_NAME_LENGTH:
        raise Refusal(1, f"{field_name} must be under 256 characters")
    if FORBIDDEN_NAME_CHARS.intersection(name):
        raise Refusal(1, f'{field_name} must not hold any of "\\/:*?|><')


def _path_names(path: str) -> list[str]:
    return [name for name in path.split("/") if name]


def _compact_json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def _range_text(low: int, high: int | None) -> str:
    return f"an integer >= {low}" if high is None else f"an integer from {low} to {high}"


def _require_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise Refusal(1, "request body must be a JSON object")
    return body


def _parse_file_ids(value: Any) -> list[int]:
    if not isinstance(value, str) or not all(FILE_ID.fullmatch(part) for part in value.split(",")):
        raise Refusal(1, "fileIDList must be a string of comma-separated positive integer file ids")
    file_ids = [int(part) for part in value.split(",")]
    if len(file_ids) > MAX_IDS:
        raise Refusal(1, f"fileIDList holds at most {MAX_IDS} file ids")
    return file_ids


def _traffic_settings(body: dict[str, Any]) -> dict[str, int]:
    settings = {}
    for name, (low, high) in TRAFFIC_RANGES.items():
        value = body.get(name)
        if value is None:
            continue
        if not _is_int(value) or value < low or (high is not None and value > high):
            raise Refusal(1, f"{name} must be {_range_text(low, high)}")
        settings[name] = value
    return settings


def _query_int(query: dict[str, str], name: str, low: int, high: int | None, default: int | None = None) -> int:
    raw = query.get(name)
    if raw is None and default is not None:
        return default
    if raw is None or not re.fullmatch(r"-?[0-9]+", raw) or int(raw) < low or (high is not None and int(raw) > high):
        raise Refusal(1, f"{name} must be {_range_text(low, high)}")
    return int(raw)


def _list_item(share: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        **{name: share[name] for name in LIST_ITEM_FIELDS},
        "expiration": share["expiration"].astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
        "expired": int(now >= share["expiration"]),
    }
