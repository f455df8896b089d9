"""Simulator of the KDocs (金山文档) open platform's OAuth and personal-file share-link endpoints, from its docs.

Simulated: the browser consent GET /h5/auth (consents at once for the default user "sim-user"), the code exchange
GET /api/v1/oauth2/access_token, POST /api/v1/oauth2/refresh_token, and POST and GET
/api/v1/openapi/personal/files/{file_token}/links, with the envelope {"code": 0, "data"} or
{"code", "msg", "data": null}, the access_token in the query only, the edit_personal_files scope, the file owner's
share-edit right, 24-hour access tokens, 90-day refresh tokens, single-use 5-minute codes and a per-app daily quota.

The simulator's own choices where the docs are silent:
- Failures answer HTTP 200; with errors_as_http_status the same body comes with the status of HTTP_STATUS_BY_CODE
  (400 for codes not listed there). An unknown path or method answers HTTP 404 {"code": 404, "msg": "not found"}.
- Openapi checks, in order: access_token (30001 when missing, unknown, revoked or expired; an Authorization header
  is ignored), the daily quota (30002), the per-second rate (30002), the scope (10003), the file (30012 unknown,
  10003 owned by another user), the body (10001 with a message naming the field), then the link (GET: 30014 when
  the file has none).
- The daily quota (daily_quota, 500) counts every openapi call that passed the token check, refused ones included,
  per app and per calendar day in Asia/Shanghai on the simulator's clock; OAuth calls do not count. Once it is used
  up, calls answer 30002 with DAILY_QUOTA_MESSAGE ("rate limiter: daily quota used up: ...") and no Retry-After
  header, until the quota resets at the next midnight Asia/Shanghai (16:00 UTC) on the simulator's clock.
- A per-second rate limit (qps; None, the default, for none, as the docs name only the daily quota) counts the same
  calls per app per second of the simulator's clock and answers 30002 with PER_SECOND_MESSAGE ("rate limiter: too
  many requests per second"), also without Retry-After. The two texts are this simulator's choice: the real ones
  are unconfirmed. A call refused by the daily quota does not count towards the per-second rate.
- Link body: an optional field sent as null counts as absent; period must be a JSON integer (bools and floats
  refused); duplicates in ext_perm_list collapse; unknown fields are ignored.
- A POST on a file without a link creates one. With a link and without reset it changes that link in place, same
  sid, whether closed or expired. reset retires the old sid and creates a new link. Fields not sent: status is
  "open" (the documented default, so a POST without status reopens a closed link); period and ext_perm_list keep
  their value on an update, and are permanent (expire_time 0) and [] on a create or reset.
- expire_time is epoch seconds of sim-now + period days, 0 when permanent. An expired link stays the file's link:
  GET answers it unchanged; only open_link() treats it as dead. Answers carry "status", absent from the docs'
  example. sids are 12 letters and digits, never reused.
- OAuth: scopes are comma-separated and taken as given. /h5/auth needs redirect_uri (10001) and echoes state (""
  when absent). Exchange: unknown app 20002, wrong app_key 30001, then a code that is missing, unknown, expired,
  used or issued to another app 10001; a refused exchange leaves the code usable. Refresh: unknown app 20002, a body
  that is not an object or lacks refresh_token 10001, wrong app_key 30001, a refresh token that is unknown, expired,
  rotated away or another app's 30001. A rotated refresh token lives 90 days from its own issue.

Upload: POST /api/v1/openapi/personal/files/upload?access_token=, one multipart/form-data request with `file` (the
bytes, with their file name), and optionally parent_id, parent_path and path_from_root. The simulator's choices:
- Checks in order: access_token (30001), quota and rate (30002, counted like every openapi call), the scope
  UPLOAD_SCOPE create_personal_files (10003; edit_personal_files alone does not do, and the link endpoints still
  need edit_personal_files: consent to ALL_SCOPES for both), the body (10001: not multipart, no `file` part with a
  file name, a file name that is empty or holds a slash, an extension, case-insensitive, outside
  DOCUMENT_EXTENSIONS, a file over max_upload_bytes (200 MiB), a bad parent_path or path_from_root), then
  parent_id (30012 unknown, 10003 another user's).
- parent_path is taken both ways a client may send a list in multipart: repeated parent_path (or parent_path[])
  fields, one folder name each, or a single field holding a JSON array of strings ('["a", "b"]'). Names must not
  be empty, ".", ".." or hold a slash. path_from_root is "true"/"false" (any case) or "1"/"0".
- Where it lands: under parent_id's folder when given (parent_id "0" is /我的文档; path_from_root is then ignored),
  else /我的文档 with path_from_root, else the app's folder /我的文档/应用/<app name> (app_names, the app id by
  default); then parent_path below that; missing folders are created.
- A name already taken by a file in that folder becomes "name(1).docx", the first free number (on_name_clash
  "rename"); on_name_clash "refuse" answers 10001 instead.
- Answer {"code": 0, "data": {"id": {"open_id", "union_id"}, "fname", "fsize", "path" (the file's full path),
  "parent_id"}}. open_id is the new file's file_token: the link endpoints take it, the authorizing user owning it.
- Memory: the base server reads the request whole (so at most max_upload_bytes plus the form), `requests` records
  the file part as {filename, size, md5}; a file keeps its size and MD5, and its bytes only under
  small_content_limit (1 MiB). reset() forgets uploaded files and the folders made, keeping preset and added files.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import string
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import unquote, urlencode

from local.simulators.base import COMMON_FAULT_KINDS, Fault, Form, Refusal, Response, SimServer, json_response

SHANGHAI = timezone(timedelta(hours=8))
ACCESS_TOKEN_LIFETIME = timedelta(hours=24)
REFRESH_TOKEN_LIFETIME = timedelta(days=90)
CODE_LIFETIME = timedelta(minutes=5)
REQUIRED_SCOPE = "edit_personal_files"
UPLOAD_SCOPE = "create_personal_files"
ALL_SCOPES = f"{REQUIRED_SCOPE},{UPLOAD_SCOPE}"
DEFAULT_APP = "sim-app"
DEFAULT_USER = "sim-user"
USERS = frozenset({DEFAULT_USER, "other-user"})
DEFAULT_FILES = {
    "777": ("demo.docx", DEFAULT_USER),
    "doc-1": ("季度报告.docx", DEFAULT_USER),
    "doc-2": ("plan.xlsx", DEFAULT_USER),
    "not-mine": ("boss.docx", "other-user"),
}
PERMISSIONS = ("read", "write")
STATUSES = ("open", "close")
EXT_PERMS = ("comment",)
PERIOD_DAYS = (0, 7, 30)
SID_ALPHABET = string.ascii_letters + string.digits
LINKS_PATH = re.compile(r"/api/v1/openapi/personal/files/(?P<file_token>[^/]+)/links")
UPLOAD_PATH = "/api/v1/openapi/personal/files/upload"
DOCUMENT_EXTENSIONS = frozenset({".docx", ".doc", ".xlsx", ".xls", ".pptx", ".ppt", ".ksheet", ".otl", ".dbt", ".pdf"})
MAX_UPLOAD_BYTES = 200 * 1024**2
SMALL_CONTENT_LIMIT = 1024**2
DOCUMENTS_ROOT = "/我的文档"
APPS_FOLDER = "应用"
ROOT_FOLDER_ID = "0"  # a user's /我的文档
FIRST_FOLDER_ID = 900_000_001
NAME_CLASH_POLICIES = ("rename", "refuse")

INVALID_ARGUMENT = 10001
PERMISSION_DENIED = 10003
APP_NOT_EXIST = 20002
USER_UNAUTHORIZED = 30001
RATE_LIMITER = 30002
DAILY_QUOTA_MESSAGE = "rate limiter: daily quota used up: the app's {quota} calls for today are spent"
PER_SECOND_MESSAGE = "rate limiter: too many requests per second"
INTERNAL_ERROR = 30004
FILE_NOT_EXISTS = 30012
LINK_NOT_EXISTS = 30014
HTTP_STATUS_BY_CODE = {
    INVALID_ARGUMENT: 400,
    USER_UNAUTHORIZED: 401,
    PERMISSION_DENIED: 403,
    FILE_NOT_EXISTS: 404,
    LINK_NOT_EXISTS: 404,
    RATE_LIMITER: 429,
    INTERNAL_ERROR: 500,
}

type Route = Callable[[dict[str, str], dict[str, str], Any], Response]


def _invalid(problem: str) -> Refusal:
    return Refusal(INVALID_ARGUMENT, f"invalid argument: {problem}")


def _unauthorized(problem: str) -> Refusal:
    return Refusal(USER_UNAUTHORIZED, f"user unauthorized: {problem}")


@dataclass(frozen=True)
class Grant:
    """What a user's consent gave an app."""

    app_id: str
    user: str
    scopes: frozenset[str]


@dataclass
class Credential:
    """An OAuth code, access token or refresh token."""

    grant: Grant
    expires_at: datetime
    spent: bool = False  # a used code, a revoked access token or a rotated-away refresh token

    def is_live(self, now: datetime) -> bool:
        return not self.spent and now < self.expires_at


@dataclass
class _LinkRequest:
    permission: str
    status: str
    ext_perm_list: list[str] | None
    period: int | None
    reset: bool


class KdocsSimulator(SimServer):
    fault_kinds = COMMON_FAULT_KINDS | {"expire_token", "code"}
    rate_limit_message = "rate limiter"
    on_name_clash = "rename"  # or "refuse" (see the module docstring)

    def __init__(
        self,
        *,
        apps: dict[str, str] | None = None,
        daily_quota: int = 500,
        qps: int | None = None,
        errors_as_http_status: bool = False,
        rotate_refresh_tokens: bool = True,
        app_names: dict[str, str] | None = None,
        max_upload_bytes: int = MAX_UPLOAD_BYTES,
        small_content_limit: int = SMALL_CONTENT_LIMIT,
    ) -> None:
        super().__init__()
        self.apps = {DEFAULT_APP: "sim-app-key"} if apps is None else dict(apps)
        self.app_names = dict(app_names or {})
        self.max_upload_bytes, self.small_content_limit = max_upload_bytes, small_content_limit
        self.daily_quota = daily_quota
        self.qps = qps
        self.errors_as_http_status = errors_as_http_status
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.users = set(USERS)
        # File token -> {"filename", "owner"}, plus for an uploaded file "size", "md5", "path", "parent_id",
        # "union_id" and, when small, "content".
        self.files: dict[str, dict[str, Any]] = {
            token: {"filename": name, "owner": owner} for token, (name, owner) in DEFAULT_FILES.items()
        }
        self.uploaded: set[str] = set()
        # Folder id -> {"name", "parent_id", "owner", "path"}; ROOT_FOLDER_ID stands for each user's /我的文档.
        self.folders: dict[str, dict[str, str]] = {}
        self._next_folder_id = FIRST_FOLDER_ID
        # File token -> the link as the endpoints answer it.
        self.links: dict[str, dict[str, Any]] = {}
        self.retired_sids: set[str] = set()
        self.codes: dict[str, Credential] = {}
        self.tokens: dict[str, Credential] = {}
        self.refresh_tokens: dict[str, Credential] = {}
        self._state_lock = threading.RLock()
        self._calls_per_day: dict[tuple[str, date], int] = {}
        self._calls_per_second: dict[str, tuple[int, int]] = {}
        self._routes: list[tuple[str, re.Pattern[str], Route]] = [
            ("GET", re.compile("/h5/auth"), self._consent),
            ("GET", re.compile("/api/v1/oauth2/access_token"), self._exchange_code),
            ("POST", re.compile("/api/v1/oauth2/refresh_token"), self._refresh),
            ("POST", re.compile(re.escape(UPLOAD_PATH)), self._upload),
            ("POST", LINKS_PATH, self._save_link),
            ("GET", LINKS_PATH, self._read_link),
        ]

    # --- helpers for tests

    def add_file(self, file_token: str, filename: str, owner: str = DEFAULT_USER) -> None:
        if owner not in self.users:
            raise ValueError(f"unknown user {owner!r}")
        with self._state_lock:
            self.files[file_token] = {"filename": filename, "owner": owner}

    def authorize(
        self,
        app_id: str = DEFAULT_APP,
        user: str = DEFAULT_USER,
        scope: str = REQUIRED_SCOPE,
        redirect_uri: str = "http://127.0.0.1/cb",
        state: str = "s",
    ) -> str:
        """The code the browser consent would hand back; redirect_uri and state only matter to /h5/auth's redirect."""
        with self._state_lock:
            return self._new_code(self._helper_grant(app_id, user, scope))

    def issue_token(
        self, app_id: str = DEFAULT_APP, user: str = DEFAULT_USER, scope: str = REQUIRED_SCOPE
    ) -> dict[str, Any]:
        """The code exchange's data, issued directly: not recorded, no quota."""
        with self._state_lock:
            return self._issue_tokens(self._helper_grant(app_id, user, scope))

    def expire_tokens(self) -> None:
        with self._state_lock:
            now = self.clock.now()
            for token in self.tokens.values():
                token.expires_at = min(token.expires_at, now)

    def revoke(self, access_token: str) -> None:
        with self._state_lock:
            if access_token not in self.tokens:
                raise ValueError("unknown access token")
            self.tokens[access_token].spent = True

    def open_link(self, sid: str) -> dict[str, Any] | None:
        """The link a visitor of https://kdocs.cn/l/<sid> reaches: None when retired, unknown, closed or expired."""
        now = int(self.clock.now().timestamp())
        with self._state_lock:
            for link in self.links.values():
                permanent_or_unexpired = link["expire_time"] == 0 or now < link["expire_time"]
                if link["sid"] == sid and link["status"] == "open" and permanent_or_unexpired:
                    return dict(link)
        return None

    def file_at(self, path: str, user: str = DEFAULT_USER) -> dict[str, Any] | None:
        """An uploaded file by its full path ("/我的文档/应用/sim-app/a/report.docx"), with its "file_token"."""
        with self._state_lock:
            for token, file in self.files.items():
                if file.get("path") == path and file["owner"] == user:
                    return {"file_token": token, **file}
        return None

    def secret_values(self) -> set[str]:
        with self._state_lock:
            return set(self.tokens) | set(self.refresh_tokens) | set(self.codes) | set(self.apps.values())

    def reset(self) -> None:
        """Forget links, credentials, quota counts, uploaded files and folders; apps, users and other files stay."""
        super().reset()
        with self._state_lock:
            for state in (self.links, self.codes, self.tokens, self.refresh_tokens, self._calls_per_day):
                state.clear()
            self.retired_sids.clear()
            self._calls_per_second.clear()
            for token in self.uploaded:
                self.files.pop(token, None)
            self.uploaded.clear()
            self.folders.clear()
            self._next_folder_id = FIRST_FOLDER_ID

    # --- SimServer hooks

    def envelope(self, code: int, message: str, data: Any = None) -> dict[str, Any]:
        if code == 0:
            return {"code": 0, "data": data}
        return {"code": code, "msg": message, "data": None}

    def failure(self, code: int, message: str) -> Response:
        status = HTTP_STATUS_BY_CODE.get(code, 400) if self.errors_as_http_status else 200
        return json_response(status, self.envelope(code, message))

    def apply_fault(self, fault: Fault) -> Response | None:
        match fault.kind:
            case "expire_token":
                self.expire_tokens()
                return None
            case "code":
                code = int(fault.options.get("code", INTERNAL_ERROR))
                return self.failure(code, str(fault.options.get("msg", "simulated failure")))
        return super().apply_fault(fault)

    def handle(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: Any) -> Response:
        for route_method, pattern, route in self._routes:
            if method == route_method and (match := pattern.fullmatch(path)):
                try:
                    with self._state_lock:
                        return route({name: unquote(value) for name, value in match.groupdict().items()}, query, body)
                except Refusal as refusal:
                    return self.failure(refusal.code, refusal.message)
        return json_response(404, {"code": 404, "msg": "not found"})

    # --- OAuth endpoints

    def _consent(self, params: dict[str, str], query: dict[str, str], body: Any) -> Response:
        app_id = self._known_app(query.get("app_id"))
        redirect_uri = query.get("redirect_uri")
        if not redirect_uri:
            raise _invalid("redirect_uri is required")
        code = self._new_code(Grant(app_id, DEFAULT_USER, _scopes(query.get("scope", ""))))
        separator = "&" if "?" in redirect_uri else "?"
        location = f"{redirect_uri}{separator}{urlencode({'code': code, 'state': query.get('state', '')})}"
        return 302, {"Location": location}, b""

    def _exchange_code(self, params: dict[str, str], query: dict[str, str], body: Any) -> Response:
        app_id = self._known_app(query.get("app_id"))
        self._check_app_key(app_id, query.get("app_key"))
        code = self.codes.get(query.get("code", ""))
        if code is None or code.grant.app_id != app_id or not code.is_live(self.clock.now()):
            raise _invalid("code is invalid, expired or already used")
        code.spent = True
        return self._success(self._issue_tokens(code.grant))

    def _refresh(self, params: dict[str, str], query: dict[str, str], body: Any) -> Response:
        app_id = self._known_app(query.get("app_id"))
        if not isinstance(body, dict):
            raise _invalid("the body must be a JSON object")
        value = body.get("refresh_token")
        if not isinstance(value, str) or not value:
            raise _invalid("refresh_token is required")
        self._check_app_key(app_id, body.get("app_key"))
        refresh = self.refresh_tokens.get(value)
        if refresh is None or refresh.grant.app_id != app_id or not refresh.is_live(self.clock.now()):
            raise _unauthorized("refresh_token is invalid or expired")
        if self.rotate_refresh_tokens:
            refresh.spent = True
        return self._success(self._issue_tokens(refresh.grant, with_refresh_token=self.rotate_refresh_tokens))

    # --- link endpoints

    def _save_link(self, params: dict[str, str], query: dict[str, str], body: Any) -> Response:
        file_token = params["file_token"]
        file = self._owned_file(self._openapi_grant(query), file_token)
        request = _link_request(body)
        link = self.links.get(file_token)
        if link is not None and request.reset:
            self.retired_sids.add(link["sid"])
            link = None
        if link is None:
            sid = self._new_sid()
            link = {
                "sid": sid,
                "link_url": f"https://kdocs.cn/l/{sid}",
                "filename": file["filename"],
                "ext_perm_list": [],
                "expire_time": 0,
            }
        link.update(link_permission=request.permission, status=request.status)
        if request.ext_perm_list is not None:
            link["ext_perm_list"] = request.ext_perm_list
        if request.period is not None:
            link["expire_time"] = self._expire_time(request.period)
        self.links[file_token] = link
        return self._success(dict(link))

    def _read_link(self, params: dict[str, str], query: dict[str, str], body: Any) -> Response:
        file_token = params["file_token"]
        self._owned_file(self._openapi_grant(query), file_token)
        link = self.links.get(file_token)
        if link is None:
            raise Refusal(LINK_NOT_EXISTS, "link not exists")
        return self._success(dict(link))

    # --- upload endpoint

    def _upload(self, params: dict[str, str], query: dict[str, str], body: Any) -> Response:
        grant = self._openapi_grant(query, UPLOAD_SCOPE)
        if not isinstance(body, Form):
            raise _invalid("the body must be multipart/form-data")
        fields = {part.name: part for part in body.parts}  # of a field sent twice, the last
        part = fields.get("file")
        if part is None or part.filename is None:
            raise _invalid("file is required, with its file name")
        fname = part.filename
        if not fname.strip() or "/" in fname or "\\" in fname:
            raise _invalid("the file name must not be empty or hold a slash")
        extension = os.path.splitext(fname)[1].lower()
        if extension not in DOCUMENT_EXTENSIONS:
            kinds = " ".join(sorted(DOCUMENT_EXTENSIONS))
            raise _invalid(f"file type {extension or '(none)'} is not supported, only {kinds}")
        size = len(part.data)
        if size > self.max_upload_bytes:
            raise _invalid(f"the file holds {size} bytes, over the limit of {self.max_upload_bytes}")
        names = _parent_path(body)
        from_root = _form_bool(fields, "path_from_root")
        parent_id = _form_text(fields, "parent_id")
        if parent_id:
            folder_id = self._owned_folder(grant.user, parent_id)
        elif from_root:
            folder_id = ROOT_FOLDER_ID
        else:
            app_name = self.app_names.get(grant.app_id, grant.app_id)
            folder_id = self._folder_path(grant.user, ROOT_FOLDER_ID, [APPS_FOLDER, app_name])
        folder_id = self._folder_path(grant.user, folder_id, names)
        name = self._free_name(grant.user, folder_id, fname)
        path = f"{self._path_of(folder_id)}/{name}"
        file_token, union_id = secrets.token_urlsafe(18), secrets.token_urlsafe(18)
        self.files[file_token] = {
            "filename": name,
            "owner": grant.user,
            "size": size,
            "md5": hashlib.md5(part.data, usedforsecurity=False).hexdigest(),
            "path": path,
            "parent_id": folder_id,
            "union_id": union_id,
            **({"content": part.data} if size < self.small_content_limit else {}),
        }
        self.uploaded.add(file_token)
        id_ = {"open_id": file_token, "union_id": union_id}
        return self._success({"id": id_, "fname": name, "fsize": size, "path": path, "parent_id": folder_id})

    def _owned_folder(self, user: str, folder_id: str) -> str:
        if folder_id == ROOT_FOLDER_ID:
            return folder_id
        folder = self.folders.get(folder_id)
        if folder is None:
            raise Refusal(FILE_NOT_EXISTS, "file not exists: parent_id")
        if folder["owner"] != user:
            raise Refusal(PERMISSION_DENIED, "permission denied: parent_id is another user's folder")
        return folder_id

    def _path_of(self, folder_id: str) -> str:
        return DOCUMENTS_ROOT if folder_id == ROOT_FOLDER_ID else self.folders[folder_id]["path"]

    def _folder_path(self, user: str, folder_id: str, names: list[str]) -> str:
        """The folder at `names` below `folder_id`, creating the missing ones."""
        for name in names:
            found = next(
                (
                    child_id
                    for child_id, folder in self.folders.items()
                    if (folder["owner"], folder["parent_id"], folder["name"]) == (user, folder_id, name)
                ),
                None,
            )
            if found is None:
                found, self._next_folder_id = str(self._next_folder_id), self._next_folder_id + 1
                path = f"{self._path_of(folder_id)}/{name}"
                self.folders[found] = {"name": name, "parent_id": folder_id, "owner": user, "path": path}
            folder_id = found
        return folder_id

    def _free_name(self, user: str, folder_id: str, fname: str) -> str:
        taken = {
            file["filename"]
            for file in self.files.values()
            if file["owner"] == user and file.get("parent_id") == folder_id
        }
        if fname not in taken:
            return fname
        if self.on_name_clash != "rename":
            raise _invalid(f"a file named {fname} is already in that folder")
        stem, extension = os.path.splitext(fname)
        number = 1
        while f"{stem}({number}){extension}" in taken:
            number += 1
        return f"{stem}({number}){extension}"

    # --- checks

    def _known_app(self, app_id: str | None) -> str:
        if app_id not in self.apps:
            raise Refusal(APP_NOT_EXIST, "app not exist")
        return app_id

    def _check_app_key(self, app_id: str, app_key: Any) -> None:
        if app_key != self.apps[app_id]:
            raise _unauthorized("app_key is invalid")

    def _openapi_grant(self, query: dict[str, str], scope: str = REQUIRED_SCOPE) -> Grant:
        value = query.get("access_token")
        if not value:
            raise _unauthorized("access_token is required")
        token = self.tokens.get(value)
        if token is None or token.spent:
            raise _unauthorized("access_token is invalid")
        if not token.is_live(self.clock.now()):
            raise _unauthorized("access_token is expired")
        self._count_call(token.grant.app_id)
        if scope not in token.grant.scopes:
            raise Refusal(PERMISSION_DENIED, f"permission denied: the access_token lacks scope {scope}")
        return token.grant

    def _count_call(self, app_id: str) -> None:
        now = self.clock.now()
        day = (app_id, now.astimezone(SHANGHAI).date())
        self._calls_per_day[day] = self._calls_per_day.get(day, 0) + 1
        if self._calls_per_day[day] > self.daily_quota:
            raise Refusal(RATE_LIMITER, DAILY_QUOTA_MESSAGE.format(quota=self.daily_quota))
        if self.qps is not None and self._calls_this_second(app_id, int(now.timestamp())) > self.qps:
            raise Refusal(RATE_LIMITER, PER_SECOND_MESSAGE)

    def _calls_this_second(self, app_id: str, second: int) -> int:
        window_second, count = self._calls_per_second.get(app_id, (second, 0))
        count = count + 1 if window_second == second else 1
        self._calls_per_second[app_id] = (second, count)
        return count

    def _owned_file(self, grant: Grant, file_token: str) -> dict[str, str]:
        file = self.files.get(file_token)
        if file is None:
            raise Refusal(FILE_NOT_EXISTS, "file not exists")
        if file["owner"] != grant.user:
            raise Refusal(PERMISSION_DENIED, "permission denied: no share-edit right on this file")
        return file

    # --- state

    def _helper_grant(self, app_id: str, user: str, scope: str) -> Grant:
        if app_id not in self.apps:
            raise ValueError(f"unknown app {app_id!r}")
        if user not in self.users:
            raise ValueError(f"unknown user {user!r}")
        return Grant(app_id, user, _scopes(scope))

    def _new_code(self, grant: Grant) -> str:
        code = _random_token()
        self.codes[code] = Credential(grant, self.clock.now() + CODE_LIFETIME)
        return code

    def _issue_tokens(self, grant: Grant, *, with_refresh_token: bool = True) -> dict[str, Any]:
        now = self.clock.now()
        access_token = _random_token()
        self.tokens[access_token] = Credential(grant, now + ACCESS_TOKEN_LIFETIME)
        data: dict[str, Any] = {
            "access_token": access_token,
            "expires_in": int(ACCESS_TOKEN_LIFETIME.total_seconds()),
            "app_id": grant.app_id,
        }
        if with_refresh_token:
            data["refresh_token"] = _random_token()
            self.refresh_tokens[data["refresh_token"]] = Credential(grant, now + REFRESH_TOKEN_LIFETIME)
        return data

    def _new_sid(self) -> str:
        taken = self.retired_sids | {link["sid"] for link in self.links.values()}
        while True:
            sid = "".join(secrets.choice(SID_ALPHABET) for _ in range(12))
            if sid not in taken:
                return sid

    def _expire_time(self, period_days: int) -> int:
        if period_days == 0:
            return 0
        return int((self.clock.now() + timedelta(days=period_days)).timestamp())

    def _success(self, data: dict[str, Any]) -> Response:
        return json_response(200, self.envelope(0, "", data))


def _scopes(scope: str) -> frozenset[str]:
    return frozenset(name.strip() for name in scope.split(",") if name.strip())


def _form_text(fields: dict[str, Any], name: str) -> str | None:
    part = fields.get(name)
    if part is None:
        return None
    text = part.text()
    if text is None:
        raise _invalid(f"{name} must be a text field")
    return str(text)


def _form_bool(fields: dict[str, Any], name: str) -> bool:
    text = _form_text(fields, name)
    if text is None or text.lower() in ("false", "0"):
        return False
    if text.lower() in ("true", "1"):
        return True
    raise _invalid(f'{name} must be "true" or "false"')


def _parent_path(form: Form) -> list[str]:
    """parent_path as repeated fields (one name each) or as one field holding a JSON array of strings."""
    texts = []
    for part in form.parts:
        if part.name in ("parent_path", "parent_path[]"):
            text = part.text()
            if text is None:
                raise _invalid("parent_path must be text fields")
            texts.append(text)
    names = texts
    if len(texts) == 1 and texts[0].lstrip().startswith("["):
        try:
            names = json.loads(texts[0])
        except ValueError:
            raise _invalid("parent_path is not a JSON array") from None
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise _invalid("parent_path must be a JSON array of folder names")
    for name in names:
        if not name.strip() or name in (".", "..") or "/" in name or "\\" in name:
            raise _invalid("parent_path names must not be empty, . or .. or hold a slash")
    return names


def _random_token() -> str:
    # Shaped like the docs' example token: 32 lower-case letters.
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(32))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _link_request(body: Any) -> _LinkRequest:
    if not isinstance(body, dict):
        raise _invalid("the body must be a JSON object")
    fields = {name: value for name, value in body.items() if value is not None}
    if fields.get("range") != "anyone":
        raise _invalid('range is required and must be "anyone"')
    permission = fields.get("permission")
    if permission not in PERMISSIONS:
        raise _invalid('permission is required and must be "read" or "write"')
    status = fields.get("status", "open")
    if status not in STATUSES:
        raise _invalid('status must be "open" or "close"')
    ext_perms = fields.get("ext_perm_list")
    if ext_perms is not None and (not isinstance(ext_perms, list) or any(perm not in EXT_PERMS for perm in ext_perms)):
        raise _invalid('ext_perm_list must be a list holding only "comment"')
    period = fields.get("period")
    if period is not None and (not _is_int(period) or period not in PERIOD_DAYS):
        raise _invalid("period must be one of the integers 0, 7, 30")
    reset = fields.get("reset", False)
    if not isinstance(reset, bool):
        raise _invalid("reset must be a boolean")
    return _LinkRequest(permission, status, None if ext_perms is None else sorted(set(ext_perms)), period, reset)
