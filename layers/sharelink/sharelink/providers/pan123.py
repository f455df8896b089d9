"""123pan (123云盘 open platform): request building, response normalizing, error mapping."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, Field, model_validator

from sharelink.aws import Session
from sharelink.config import provider_config
from sharelink.deadline import DEADLINE
from sharelink.errors import (
    OutcomeUnknown,
    ProviderAuthFailed,
    ProviderError,
    ProviderNotFound,
    ProviderRateLimited,
    ProviderRejected,
    SharelinkError,
    TokenRejected,
)
from sharelink.providers.base import Attempt, ProviderClient, RequestModel
from sharelink.renewal import RenewalRequests
from sharelink.secrets import reader_from_env
from sharelink.share import Share, rfc3339
from sharelink.tokens import IssuedToken, SecretTokens, with_token
from sharelink.transport import HttpTransport, Reply, Transport, retry_after
from sharelink.validation import INT64_MAX, CommaSeparated, VisibleText, alias, one_of

PROVIDER = "123pan"
DEFAULT_BASE_URL = "https://open-api.123pan.com"
SHARE_URL = "https://www.123pan.com/s/{share_key}"
PROVIDER_TZ = timezone(timedelta(hours=8))
MAX_IDS = 100
PLATFORM = {"Platform": "open_platform"}
# Reconciling a create whose outcome is unknown reads the share list. The list's order is not documented; the
# simulator and the `lastShareId` cursor suggest ascending ids (unconfirmed): with it, listing starts after the
# newest share made here before the attempt. Set False to scan from the first page.
LIST_ASCENDING_BY_ID = True
RECONCILE_PAGES = 20
RECONCILE_PAGE_SIZE = 100
# share/list allows 10 QPS per client: a rate-limited page is asked again after the pause 123pan asks for, while the
# invocation has time, rather than failing the retried request (on the storage path, a redelivery counted toward its
# dead-letter queue). Listing is safe to repeat.
RECONCILE_RATE_LIMITED_TRIES = 5
# How far the provider's clock may be from ours when a listed share's creation time is judged.
CLOCK_SKEW = timedelta(minutes=5)
# Tokens live 30 days and at most 3 per client are live: renew well ahead, one new token at a time.
RENEW_BEFORE = timedelta(days=3)

# Envelope codes beside 0 (ok), 401 (token) and 429 (rate limit). Code 1 is "internal error, also used
# for business errors"; the notes document no other code for a body the provider refuses, so it is read
# as a refusal. Unlisted codes are provider errors (502).
ERROR_CODES: dict[int, type[SharelinkError]] = {
    1: ProviderRejected,
    5066: ProviderNotFound,
    5113: ProviderRejected,
}


PositiveId = Annotated[int, Field(gt=0, le=INT64_MAX)]
IdList = Annotated[list[PositiveId], CommaSeparated, Field(min_length=1, max_length=MAX_IDS)]
TrafficSwitch = Annotated[int, one_of(1, 2, 3, 4)]
TrafficLimitSwitch = Annotated[int, one_of(1, 2)]
TrafficLimit = Annotated[int, Field(ge=0, le=INT64_MAX)]
# No length rule is documented for either; these are the contract's (DESIGN.md, "Limits and guarantees").
ShareName = Annotated[VisibleText, Field(max_length=255)]
SharePassword = Annotated[VisibleText, Field(max_length=64)]


class CreateShareRequest(RequestModel):
    name: ShareName = alias("name", "shareName")
    expire_days: Annotated[int, one_of(0, 1, 7, 30)] = alias("expire_days", "shareExpire")
    file_ids: IdList = alias("file_ids", "fileIDList")
    password: SharePassword | None = alias("password", "sharePwd", default=None)
    traffic_switch: TrafficSwitch | None = alias("traffic_switch", "trafficSwitch", default=None)
    traffic_limit_switch: TrafficLimitSwitch | None = alias("traffic_limit_switch", "trafficLimitSwitch", default=None)
    traffic_limit: TrafficLimit | None = alias("traffic_limit", "trafficLimit", default=None)


class TrafficUpdate(RequestModel):
    share_ids: IdList = alias("share_ids", "shareIdList")
    traffic_switch: TrafficSwitch | None = alias("traffic_switch", "trafficSwitch", default=None)
    traffic_limit_switch: TrafficLimitSwitch | None = alias("traffic_limit_switch", "trafficLimitSwitch", default=None)
    traffic_limit: TrafficLimit | None = alias("traffic_limit", "trafficLimit", default=None)

    @model_validator(mode="after")
    def _one_setting_at_least(self) -> TrafficUpdate:
        if self.traffic_switch is None and self.traffic_limit_switch is None and self.traffic_limit is None:
            raise ValueError("give at least one of traffic_switch, traffic_limit_switch, traffic_limit")
        return self


class ListedShare(Share):
    expired: bool
    preview_count: int
    download_count: int
    save_count: int


class SharePage(BaseModel):
    shares: list[ListedShare]
    next_cursor: str | None


class TrafficUpdated(BaseModel):
    updated: list[str]


def create_body(request: CreateShareRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "shareName": request.name,
        "shareExpire": request.expire_days,
        "fileIDList": ",".join(str(file_id) for file_id in request.file_ids),
    }
    if request.password is not None:
        body["sharePwd"] = request.password
    return body | _traffic_settings(request)


def traffic_body(request: TrafficUpdate) -> dict[str, Any]:
    return {"shareIdList": list(request.share_ids)} | _traffic_settings(request)


def _traffic_settings(request: CreateShareRequest | TrafficUpdate) -> dict[str, int]:
    settings = {
        "trafficSwitch": request.traffic_switch,
        "trafficLimitSwitch": request.traffic_limit_switch,
        "trafficLimit": request.traffic_limit,
    }
    return {name: value for name, value in settings.items() if value is not None}


def parse_expiration(text: Any) -> datetime | None:
    """`expiration` is "YYYY-MM-DD HH:MM:SS" on the provider's clock (UTC+8)."""
    try:
        return datetime.strptime(str(text), "%Y-%m-%d %H:%M:%S").replace(tzinfo=PROVIDER_TZ).astimezone(UTC)
    except ValueError:
        return None


def unwrap(reply: Reply) -> dict[str, Any]:
    """The envelope of a successful answer; every other answer raises its typed error."""
    envelope = reply.json()
    code = envelope.get("code") if isinstance(envelope, dict) else None
    message = str(envelope.get("message", "")) if isinstance(envelope, dict) else ""
    if reply.status >= 500:
        raise ProviderError(f"123pan answered HTTP {reply.status}", provider=PROVIDER, provider_code=code)
    if reply.status == 429 or code == 429:
        raise ProviderRateLimited(
            f"123pan is rate limiting: {message or 'too many requests'}",
            provider=PROVIDER,
            provider_code=code if code is not None else reply.status,
            retry_after=retry_after(reply.headers),
        )
    if reply.status == 401 or code == 401:
        raise TokenRejected(PROVIDER, code, message or "token rejected")
    if not isinstance(code, int) or isinstance(code, bool):
        raise ProviderError(f"123pan answered HTTP {reply.status} without its JSON envelope", provider=PROVIDER)
    if code == 0:
        return envelope
    error = ERROR_CODES.get(code, ProviderError)
    raise error(f"123pan refused the request: {message}", provider=PROVIDER, provider_code=code)


def _field(data: Any, name: str) -> Any:
    if not isinstance(data, dict) or data.get(name) is None:
        raise ProviderError(f"123pan answered without {name}", provider=PROVIDER)
    return data[name]


def mint_token(transport: Transport, client_id: str, client_secret: str) -> IssuedToken:
    """A new access token for the client (client credentials; there is no refresh token)."""
    reply = transport.send(
        "POST", "/api/v1/access_token", headers=PLATFORM, body={"clientID": client_id, "clientSecret": client_secret}
    )
    try:
        data = unwrap(reply)["data"]
    except TokenRejected as rejected:
        raise ProviderAuthFailed.refused(rejected, "123pan refused the client credentials") from None
    try:
        expiry = datetime.fromisoformat(str(_field(data, "expiredAt")))
    except ValueError:
        raise ProviderError("123pan answered an unreadable expiredAt", provider=PROVIDER) from None
    return IssuedToken(access_token=str(_field(data, "accessToken")), expires_at=expiry)


def _client_credentials(secret: dict[str, Any]) -> tuple[str, str]:
    if not secret.get("client_id") or not secret.get("client_secret"):
        raise ProviderAuthFailed("the 123pan secret has no client_id or client_secret", provider=PROVIDER)
    return str(secret["client_id"]), str(secret["client_secret"])


class Pan123(ProviderClient):
    name: ClassVar[str] = PROVIDER
    create_request: ClassVar[type[RequestModel]] = CreateShareRequest
    renew_before: ClassVar[timedelta] = RENEW_BEFORE

    @classmethod
    def from_env(cls, session: Session) -> Pan123:
        config = provider_config("PAN123", DEFAULT_BASE_URL)
        transport = HttpTransport(config.base_url, provider=PROVIDER, timeout_s=config.timeout_s)

        def first_use(secret: dict[str, Any]) -> str:
            return mint_token(transport, *_client_credentials(secret)).access_token

        return cls(
            transport,
            SecretTokens(
                config.secret_id,
                reader_from_env(session),
                provider=PROVIDER,
                renewal=RenewalRequests.from_env(session),
                first_use=first_use,
            ),
        )

    def renew_secret(self, secret: dict[str, Any]) -> dict[str, Any]:
        """The secret with a new access token: one token endpoint call, whatever happens."""
        issued = mint_token(self.transport, *_client_credentials(secret))
        return secret | {"access_token": issued.access_token, "expires_at": rfc3339(issued.expires_at)}

    def create_share(self, request: CreateShareRequest) -> Share:
        created_at = self.clock().replace(microsecond=0)
        envelope = self._call("POST", "/api/v1/share/create", body=create_body(request))
        share_key = str(_field(envelope["data"], "shareKey"))
        return Share(
            provider=PROVIDER,
            share_id=str(_field(envelope["data"], "shareID")),
            share_key=share_key,
            url=SHARE_URL.format(share_key=share_key),
            password=request.password,
            expires_at=created_at + timedelta(days=request.expire_days) if request.expire_days else None,
            name=request.name,
            file_ids=[str(file_id) for file_id in request.file_ids],
            provider_request_id=envelope.get("x-traceID"),
        )

    def before_create(self, request: CreateShareRequest) -> dict[str, Any]:
        return {}

    def find_created(self, request: CreateShareRequest, attempt: Attempt) -> list[Share]:
        """Listed shares the earlier attempt may have made: newer than the newest share made here before it, with
        the request's name, password and traffic settings, and (for an expiring share) created since it started."""
        cursor = str(attempt.newest_share_id) if LIST_ASCENDING_BY_ID else "0"
        found: list[Share] = []
        for _ in range(RECONCILE_PAGES):
            envelope = self._reconcile_page({"limit": str(RECONCILE_PAGE_SIZE), "lastShareId": cursor})
            data = envelope["data"]
            items = [item for item in _field(data, "shareList") if self._may_be_made_by(item, request, attempt)]
            found += [_adopted(item, request, envelope.get("x-traceID")) for item in items]
            last_share_id = _field(data, "lastShareId")
            if last_share_id == -1:
                return found
            cursor = str(last_share_id)
        raise OutcomeUnknown(
            f"an earlier attempt timed out and the share list is longer than {RECONCILE_PAGES} pages after the "
            "newest share made here: whether it made a share cannot be told, so none is created again",
            provider=PROVIDER,
        )

    def _reconcile_page(self, params: dict[str, str]) -> dict[str, Any]:
        for _ in range(RECONCILE_RATE_LIMITED_TRIES - 1):
            try:
                return self._call("GET", "/api/v1/share/list", params=params)
            except ProviderRateLimited as limited:
                if DEADLINE.left() < 2 * limited.retry_after:
                    raise
                time.sleep(limited.retry_after)
        return self._call("GET", "/api/v1/share/list", params=params)

    def _may_be_made_by(self, item: dict[str, Any], request: CreateShareRequest, attempt: Attempt) -> bool:
        wanted = {"shareName": request.name, "sharePwd": request.password or ""} | _traffic_settings(request)
        if any(item.get(name) != value for name, value in wanted.items()):
            return False
        if int(item.get("shareId") or 0) <= attempt.newest_share_id:
            return False
        if not request.expire_days:
            return True
        expiration = parse_expiration(item.get("expiration"))
        if expiration is None:
            return False
        created = expiration - timedelta(days=request.expire_days)
        return attempt.started_at - CLOCK_SKEW <= created <= self.clock() + CLOCK_SKEW

    def list_shares(self, *, limit: int, cursor: str | None) -> SharePage:
        params = {"limit": str(limit), "lastShareId": cursor or "0"}
        envelope = self._call("GET", "/api/v1/share/list", params=params)
        data = envelope["data"]
        last_share_id = _field(data, "lastShareId")
        return SharePage(
            shares=[_listed_share(item, envelope.get("x-traceID")) for item in _field(data, "shareList")],
            next_cursor=None if last_share_id == -1 else str(last_share_id),
        )

    def update_traffic(self, request: TrafficUpdate) -> TrafficUpdated:
        self._call("PUT", "/api/v1/share/list/info", body=traffic_body(request))
        return TrafficUpdated(updated=[str(share_id) for share_id in request.share_ids])

    def _call(
        self, method: str, path: str, *, params: Mapping[str, str] | None = None, body: Any = None
    ) -> dict[str, Any]:
        def send(token: str) -> dict[str, Any]:
            headers = {"Authorization": f"Bearer {token}"} | PLATFORM
            return unwrap(self.transport.send(method, path, headers=headers, params=params, body=body))

        return with_token(self.tokens, send)


def _adopted(item: dict[str, Any], request: CreateShareRequest, request_id: str | None) -> Share:
    """A listed share as the answer to the request that made it (the list does not say which files it holds)."""
    listed = _listed_share(item, request_id).model_dump(include=set(Share.model_fields))
    return Share.model_validate(
        listed
        | {
            "password": request.password,
            "expires_at": listed["expires_at"] if request.expire_days else None,
            "name": request.name,
            "file_ids": [str(file_id) for file_id in request.file_ids],
        }
    )


def _listed_share(item: dict[str, Any], request_id: str | None) -> ListedShare:
    share_key = str(_field(item, "shareKey"))
    return ListedShare(
        provider=PROVIDER,
        share_id=str(_field(item, "shareId")),
        share_key=share_key,
        url=SHARE_URL.format(share_key=share_key),
        password=item.get("sharePwd") or None,
        expires_at=parse_expiration(item.get("expiration")),
        name=item.get("shareName"),
        file_ids=[],
        provider_request_id=request_id,
        expired=bool(item.get("expired")),
        preview_count=int(item.get("previewCount") or 0),
        download_count=int(item.get("downloadCount") or 0),
        save_count=int(item.get("saveCount") or 0),
    )
