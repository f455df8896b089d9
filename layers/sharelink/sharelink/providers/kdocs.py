"""KDocs (金山文档 open platform): request building, response normalizing, error mapping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any, ClassVar
from urllib.parse import quote, urlencode

from pydantic import AliasChoices, Field, model_validator

from sharelink.aws import Session
from sharelink.config import provider_config
from sharelink.errors import (
    ProviderAuthFailed,
    ProviderError,
    ProviderForbidden,
    ProviderNotFound,
    ProviderRateLimited,
    ProviderRejected,
    ProviderTimeout,
    SharelinkError,
    TokenRejected,
)
from sharelink.providers.base import Attempt, ProviderClient, RequestModel
from sharelink.renewal import RenewalRequests
from sharelink.secrets import reader_from_env
from sharelink.share import Share, bounded_text, rfc3339
from sharelink.tokens import IssuedToken, SecretTokens, with_token
from sharelink.transport import HttpTransport, Reply, Transport, retry_after
from sharelink.validation import one_of, two_spellings

PROVIDER = "kdocs"
DEFAULT_BASE_URL = "https://developer.kdocs.cn"
LINKS_PATH = "/api/v1/openapi/personal/files/{file_token}/links"
# Share links need edit_personal_files, uploads create_personal_files.
SCOPE = "edit_personal_files,create_personal_files"
# Access tokens live 24 hours; the tokens function runs hourly.
RENEW_BEFORE = timedelta(hours=2)
TOKEN_REJECTED_CODES = {30001}
RATE_LIMITED_CODES = {30002}
# 30002 means "quota or rate exceeded". An app's daily quota resets at midnight (presumably Asia/Shanghai) and the
# provider sends no Retry-After: a message with one of these words is read as the daily quota (both unconfirmed).
DAILY_QUOTA_WORDS = ("quota", "today", "daily", "per day", "配额", "今日", "当日", "今天")
QUOTA_TIMEZONE = timezone(timedelta(hours=8))
# The WPS/KDocs common code table (unconfirmed for this host, see notes.md); unlisted codes are provider errors.
ERROR_CODES: dict[int, type[SharelinkError]] = {
    10001: ProviderRejected,
    10002: ProviderTimeout,
    10003: ProviderForbidden,
    30012: ProviderNotFound,
    30014: ProviderNotFound,
}

# A file token goes into a URL path: only characters that cannot change the path or the query.
FILE_TOKEN_PATTERN = r"^[A-Za-z0-9_-]+$"  # noqa: S105 - a pattern, not a secret
MAX_FILE_TOKEN = 128
FileToken = Annotated[str, Field(pattern=FILE_TOKEN_PATTERN, min_length=1, max_length=MAX_FILE_TOKEN)]


class CreateLinkRequest(RequestModel):
    file_token: FileToken
    permission: Annotated[str, one_of("read", "write")]
    expire_days: Annotated[int, one_of(0, 7, 30)] | None = Field(
        None, validation_alias=AliasChoices("expire_days", "period")
    )
    allow_comment: bool | None = None
    status: Annotated[str, one_of("open", "close")] | None = None
    range: Annotated[str, one_of("anyone")] = "anyone"
    reset: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _ext_perm_list(cls, data: Any) -> Any:
        """The provider's `ext_perm_list: ["comment"]` is `allow_comment: true`."""
        if not isinstance(data, dict) or "ext_perm_list" not in data:
            return data
        if "allow_comment" in data:
            raise two_spellings("allow_comment", ["allow_comment", "ext_perm_list"])
        data = dict(data)
        perms = data.pop("ext_perm_list")
        if not isinstance(perms, list) or not set(perms) <= {"comment"}:
            raise ValueError('ext_perm_list may only hold "comment"')
        data["allow_comment"] = "comment" in perms
        return data


class KdocsShare(Share):
    status: str
    allow_comment: bool


def link_body(request: CreateLinkRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"range": request.range, "permission": request.permission}
    optional = {"status": request.status, "period": request.expire_days, "reset": request.reset}
    body |= {name: value for name, value in optional.items() if value is not None}
    if request.allow_comment is not None:
        body["ext_perm_list"] = ["comment"] if request.allow_comment else []
    return body


def unwrap(reply: Reply) -> dict[str, Any]:
    """`data` of a successful answer. Failures come as HTTP 200 + code or as HTTP 4xx/5xx + JSON: both raise."""
    envelope = reply.json()
    code = envelope.get("code") if isinstance(envelope, dict) else None
    if not isinstance(code, int) or isinstance(code, bool):
        code = None
    message = _message(envelope)
    if code in TOKEN_REJECTED_CODES or (code is None and reply.status == 401):
        raise TokenRejected(PROVIDER, code or reply.status, message or "token rejected")
    if code in RATE_LIMITED_CODES or reply.status == 429:
        raise ProviderRateLimited(
            f"kdocs is rate limiting: {message or 'quota or rate exceeded'}",
            provider=PROVIDER,
            provider_code=code if code is not None else reply.status,
            retry_after=_retry_after(reply, message),
        )
    if code == 0 and reply.status < 400:
        data = envelope.get("data")
        if isinstance(data, dict):
            return data
    if code is None or code == 0:
        raise ProviderError(f"kdocs answered HTTP {reply.status} without its JSON envelope", provider=PROVIDER)
    error = ERROR_CODES.get(code, ProviderError)
    raise error(f"kdocs refused the request: {message}", provider=PROVIDER, provider_code=code)


def _retry_after(reply: Reply, message: str) -> int:
    """The provider's Retry-After; else, for a used-up daily quota, the seconds until it resets."""
    if "Retry-After" in reply.headers or not any(word in message.lower() for word in DAILY_QUOTA_WORDS):
        return retry_after(reply.headers)
    now = datetime.now(QUOTA_TIMEZONE)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), QUOTA_TIMEZONE)
    return max(1, int((midnight - now).total_seconds()) + 1)


def _message(envelope: Any) -> str:
    if not isinstance(envelope, dict):
        return ""
    return str(next((envelope[key] for key in ("msg", "message", "result") if envelope.get(key)), ""))


def normalize(data: dict[str, Any], file_token: str, status: str | None = None) -> KdocsShare:
    sid = data.get("sid")
    if not sid or not data.get("link_url"):
        raise ProviderError("kdocs answered without sid or link_url", provider=PROVIDER)
    expire_time = data.get("expire_time") or 0
    return KdocsShare(
        provider=PROVIDER,
        share_id=str(sid),
        share_key=str(sid),
        url=str(data["link_url"]),
        expires_at=datetime.fromtimestamp(int(expire_time), UTC) if expire_time else None,
        permission=data.get("link_permission"),
        name=bounded_text(data.get("filename")),
        file_ids=[file_token],
        status=str(data.get("status") or status or "open"),
        allow_comment="comment" in (data.get("ext_perm_list") or []),
    )


def consent_url(base_url: str, app_id: str, redirect_uri: str, state: str) -> str:
    """Where the user consents once; KDocs then redirects to `redirect_uri?code=...&state=...`."""
    query = urlencode({"app_id": app_id, "scope": SCOPE, "redirect_uri": redirect_uri, "state": state})
    return f"{base_url.rstrip('/')}/h5/auth?{query}"


def exchange_code(transport: Transport, app_id: str, app_key: str, code: str, now: datetime) -> IssuedToken:
    reply = transport.send(
        "GET", "/api/v1/oauth2/access_token", params={"code": code, "app_id": app_id, "app_key": app_key}
    )
    return _issued(reply, now)


def refresh_access_token(
    transport: Transport, app_id: str, app_key: str, refresh_token: str, now: datetime
) -> IssuedToken:
    body = {"app_key": app_key, "refresh_token": refresh_token}
    return _issued(transport.send("POST", "/api/v1/oauth2/refresh_token", params={"app_id": app_id}, body=body), now)


def _issued(reply: Reply, now: datetime) -> IssuedToken:
    try:
        data = unwrap(reply)
    except TokenRejected as rejected:
        raise ProviderAuthFailed.refused(rejected, "kdocs refused the app key or refresh token") from None
    if not data.get("access_token") or not isinstance(data.get("expires_in"), int):
        raise ProviderError("kdocs answered without access_token or expires_in", provider=PROVIDER)
    return IssuedToken(
        access_token=str(data["access_token"]),
        expires_at=now + timedelta(seconds=data["expires_in"]),
        refresh_token=data.get("refresh_token"),
    )


class Kdocs(ProviderClient):
    name: ClassVar[str] = PROVIDER
    create_request: ClassVar[type[RequestModel]] = CreateLinkRequest
    renew_before: ClassVar[timedelta] = RENEW_BEFORE

    @classmethod
    def from_env(cls, session: Session) -> Kdocs:
        config = provider_config("KDOCS", DEFAULT_BASE_URL)
        transport = HttpTransport(config.base_url, provider=PROVIDER, timeout_s=config.timeout_s)
        return cls(
            transport,
            SecretTokens(
                config.secret_id, reader_from_env(session), provider=PROVIDER, renewal=RenewalRequests.from_env(session)
            ),
        )

    def renew_secret(self, secret: dict[str, Any]) -> dict[str, Any]:
        """The secret after the refresh_token grant; a new refresh_token is kept when one comes back."""
        if not all(secret.get(field) for field in ("app_id", "app_key", "refresh_token")):
            raise ProviderAuthFailed("the kdocs secret has no app_id, app_key or refresh_token", provider=PROVIDER)
        issued = refresh_access_token(
            self.transport, secret["app_id"], secret["app_key"], secret["refresh_token"], self.clock()
        )
        return secret | {
            "access_token": issued.access_token,
            "refresh_token": issued.refresh_token or secret["refresh_token"],
            "expires_at": rfc3339(issued.expires_at),
        }

    def create_share(self, request: CreateLinkRequest) -> KdocsShare:
        """Create the file's link, or update it in place (`reset` issues a new one)."""
        data = self._links("POST", request.file_token, link_body(request))
        return normalize(data, request.file_token, request.status)

    def before_create(self, request: CreateLinkRequest) -> dict[str, Any]:
        """A reset retires the file's link: note which one, to recognize the new link an attempt may have made."""
        return {"sid_before": self._current_sid(request.file_token)} if request.reset else {}

    def find_created(self, request: CreateLinkRequest, attempt: Attempt) -> list[Share]:
        """A file has one link, so resending a create without reset changes that link again and makes no second
        one: nothing to find. After a reset, a link other than the one it replaced, with the permission asked for,
        is the one the earlier attempt made."""
        if not request.reset:
            return []
        try:
            current = self.read_share(request.file_token)
        except ProviderNotFound:
            return []
        replaced = current.share_id != attempt.before.get("sid_before")
        return [current] if replaced and current.permission == request.permission else []

    def _current_sid(self, file_token: str) -> str | None:
        try:
            return self.read_share(file_token).share_id
        except ProviderNotFound:
            return None

    def read_share(self, file_token: str) -> KdocsShare:
        return normalize(self._links("GET", file_token), file_token)

    def close_share(self, file_token: str) -> KdocsShare:
        """status close; the provider needs the permission too, so the current one is kept."""
        current = self.read_share(file_token)
        request = {"file_token": file_token, "permission": current.permission or "read", "status": "close"}
        return self.create_share(CreateLinkRequest.model_validate(request))

    def _links(self, method: str, file_token: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        path = LINKS_PATH.format(file_token=quote(file_token, safe=""))

        def send(token: str) -> dict[str, Any]:
            return unwrap(self.transport.send(method, path, params={"access_token": token}, body=body))

        return with_token(self.tokens, send)
