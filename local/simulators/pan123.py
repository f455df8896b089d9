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
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import string
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl

from local.simulators.base import COMMON_FAULT_KINDS, Fault, Refusal, Response, SimServer, json_response

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
# Body and query keys by their lower-case spelling, for keys_ignore_case.
KEY_SPELLINGS = {
    name.lower(): name
    for name in (
        "clientID", "clientSecret", "shareName", "shareExpire", "fileIDList", "sharePwd", *TRAFFIC_DEFAULTS,
        "shareIdList", "limit", "lastShareId",
    )
}  # fmt: skip

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


class Pan123Simulator(SimServer):
    fault_kinds = COMMON_FAULT_KINDS | {"expire_token", "code"}
    rate_limit_message = RATE_LIMITED

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
    ) -> None:
        super().__init__()
        self.clients = {"sim-client": "sim-secret"} if clients is None else dict(clients)
        self.files = DEFAULT_FILES if files is None else frozenset(files)
        self.list_qps, self.token_qps, self.create_qps = list_qps, token_qps, create_qps
        self.keys_ignore_case, self.token_form_body, self.jwt_tokens = keys_ignore_case, token_form_body, jwt_tokens
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
        }

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

    def reset(self) -> None:
        super().reset()
        with self._state_lock:
            self.shares.clear()
            self._tokens.clear()
            self._rate_windows.clear()
            self._next_share_id = FIRST_SHARE_ID

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
        if self.keys_ignore_case:
            query = _usual_spelling(query)
            body = _usual_spelling(body) if isinstance(body, dict) else body
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
        if not self.files.issuperset(file_ids):
            raise Refusal(5066, "文件不存在")
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

    def _count_call(self, bucket: str, client_id: str, qps: int | None) -> None:
        if qps is None:
            return
        second = int(self.clock.now().timestamp())
        window_second, count = self._rate_windows.get((bucket, client_id), (second, 0))
        count = count + 1 if window_second == second else 1
        self._rate_windows[bucket, client_id] = (second, count)
        if count > qps:
            raise Refusal(429, RATE_LIMITED)

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


def _usual_spelling(fields: dict[str, Any]) -> dict[str, Any]:
    return {KEY_SPELLINGS.get(key.lower(), key): value for key, value in fields.items()}


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
