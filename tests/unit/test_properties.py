"""Properties of request building and answer normalizing for both providers (hypothesis, no I/O)."""

from __future__ import annotations

import json
import re
import string
import unicodedata
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from sharelink.errors import (
    ProviderError,
    ProviderForbidden,
    ProviderNotFound,
    ProviderRateLimited,
    ProviderRejected,
    ProviderTimeout,
    SharelinkError,
    TokenRejected,
)
from sharelink.providers import kdocs, pan123
from sharelink.providers.kdocs import CreateLinkRequest, link_body, normalize
from sharelink.providers.pan123 import (
    CreateShareRequest,
    TrafficUpdate,
    _listed_share,
    create_body,
    parse_expiration,
    traffic_body,
)
from sharelink.transport import Reply

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- 123pan: strategies

PAN123_NAMES = {
    "name": "shareName",
    "expire_days": "shareExpire",
    "file_ids": "fileIDList",
    "password": "sharePwd",
    "traffic_switch": "trafficSwitch",
    "traffic_limit_switch": "trafficLimitSwitch",
    "traffic_limit": "trafficLimit",
    "share_ids": "shareIdList",
}
# White space and characters that show nothing (zero-width, joiners, BOM, controls): a name made of them only is
# blank (DESIGN.md, "Limits and guarantees").
BLANKS = " \t\n\r\x0b\x0c\u00a0\u2003\u3000\u200b\u200c\u200d\u2060\ufeff\x00\x1b\u0301"
SHOWS_NOTHING = {"Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "Me"}
not_blank = st.text(min_size=1, max_size=40).filter(
    lambda text: any(not char.isspace() and unicodedata.category(char) not in SHOWS_NOTHING for char in text)
)
ids = st.lists(st.integers(min_value=1, max_value=2**53), min_size=1, max_size=100)
traffic = {
    "traffic_switch": st.integers(1, 4),
    "traffic_limit_switch": st.integers(1, 2),
    "traffic_limit": st.integers(0, 2**62),
}
create_bodies = st.fixed_dictionaries(
    {"name": not_blank, "expire_days": st.sampled_from([0, 1, 7, 30]), "file_ids": ids},
    optional={"password": not_blank, **traffic},
)
traffic_updates = st.fixed_dictionaries({"share_ids": ids}, optional=traffic).filter(lambda body: len(body) > 1)


@st.composite
def provider_twin(draw: st.DrawFn, body: dict) -> dict:
    """The same body with the provider's names for a drawn subset of fields, ids maybe as the "1,2,3" string."""
    twin = {}
    for name, value in body.items():
        key = PAN123_NAMES[name] if draw(st.booleans()) else name
        if name in ("file_ids",) and draw(st.booleans()):
            separator = draw(st.sampled_from([",", ", ", " ,"]))
            value = separator.join(str(item) for item in value)
        twin[key] = value
    return twin


def validation_fields(raised: pytest.ExceptionInfo[ValidationError]) -> set[str]:
    return {str(error["loc"][0]) for error in raised.value.errors() if error["loc"]}


# --- 123pan: properties


@PROPERTY
@given(st.data(), create_bodies)
def test_snake_case_body_and_its_provider_twin_are_the_same_request(data, body):
    twin = data.draw(provider_twin(body))

    request = CreateShareRequest.model_validate(body)

    assert CreateShareRequest.model_validate(twin) == request
    assert create_body(CreateShareRequest.model_validate(twin)) == create_body(request)


@PROPERTY
@given(create_bodies)
def test_create_body_is_the_provider_body_of_the_same_request(body):
    request = CreateShareRequest.model_validate(body)
    provider_body = create_body(request)

    assert CreateShareRequest.model_validate(provider_body) == request
    assert provider_body["fileIDList"] == ",".join(str(file_id) for file_id in body["file_ids"])
    assert set(provider_body) == {PAN123_NAMES[name] for name in body}
    assert json.loads(json.dumps(provider_body)) == provider_body


@PROPERTY
@given(st.data(), traffic_updates)
def test_traffic_update_and_its_twin_build_the_same_provider_body(data, body):
    twin = {(PAN123_NAMES[name] if data.draw(st.booleans()) else name): value for name, value in body.items()}

    request = TrafficUpdate.model_validate(body)

    assert TrafficUpdate.model_validate(twin) == request
    assert traffic_body(request) == {PAN123_NAMES[name]: value for name, value in body.items()}
    assert TrafficUpdate.model_validate(traffic_body(request)) == request


def _refused(model: type, body: dict, field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        model.model_validate(body)
    assert field in validation_fields(raised), raised.value.errors()


@PROPERTY
@given(create_bodies, st.booleans(), st.data())
def test_out_of_limit_create_bodies_are_refused_naming_the_field(body, provider_names, data):
    breaks = {
        "file_ids": st.one_of(
            st.just([]),
            st.lists(st.integers(1, 2**31), min_size=101, max_size=150),
            ids.flatmap(lambda good: st.integers(-(2**31), 0).map(lambda bad: [*good, bad])),
        ),
        "expire_days": st.integers().filter(lambda days: days not in (0, 1, 7, 30)),
        "traffic_switch": st.integers().filter(lambda value: not 1 <= value <= 4),
        "traffic_limit_switch": st.integers().filter(lambda value: value not in (1, 2)),
        "traffic_limit": st.integers(max_value=-1),
        "name": st.text(alphabet=BLANKS, max_size=5),
        "password": st.text(alphabet=BLANKS, max_size=5),
    }
    field = data.draw(st.sampled_from(sorted(breaks)))
    broken = body | {field: data.draw(breaks[field])}
    spelled = PAN123_NAMES[field] if provider_names else field
    broken = {(spelled if name == field else name): value for name, value in broken.items()}

    _refused(CreateShareRequest, broken, spelled)


@PROPERTY
@given(create_bodies, st.sampled_from(["expire_days", "traffic_switch", "traffic_limit_switch", "traffic_limit"]))
def test_numbers_must_be_json_numbers(body, field):
    """`"7"` and `true` are refused wherever a number goes."""
    for value in ("7", True, 1.0):
        _refused(CreateShareRequest, body | {field: value}, field)


@PROPERTY
@given(ids)
def test_traffic_update_without_any_setting_is_refused(share_ids):
    with pytest.raises(ValidationError):
        TrafficUpdate.model_validate({"share_ids": share_ids})


beijing_times = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(9998, 12, 31)).map(
    lambda moment: moment.replace(microsecond=0)
)


@PROPERTY
@given(beijing_times)
def test_expiration_text_is_that_beijing_instant_in_utc(moment):
    parsed = parse_expiration(moment.strftime("%Y-%m-%d %H:%M:%S"))

    assert parsed == (moment - timedelta(hours=8)).replace(tzinfo=UTC)
    assert parsed.utcoffset() == timedelta(0)


@PROPERTY
@given(st.one_of(st.text(), st.none(), st.integers(), st.floats()))
def test_expiration_never_raises(text):
    parsed = parse_expiration(text)

    assert parsed is None or parsed.tzinfo is not None


def pan123_reply(status: int, code: object, message: str = "m") -> Reply:
    body = {"code": code, "message": message, "data": {"shareID": 1}, "x-traceID": "t"}
    return Reply(status, json.dumps(body).encode(), {})


PAN123_ERRORS = {1: ProviderRejected, 5066: ProviderNotFound, 5113: ProviderRejected, 429: ProviderRateLimited}


@PROPERTY
@given(st.integers().filter(lambda code: code != 0), st.sampled_from([200, 400, 401, 403, 404, 429, 500, 503]))
@example(401, 200)
@example(429, 200)
@example(5066, 200)
def test_any_nonzero_123pan_code_raises(code, status):
    with pytest.raises((SharelinkError, TokenRejected)) as raised:
        pan123.unwrap(pan123_reply(status, code))

    if status >= 500:
        expected: type[Exception] = ProviderError
    elif status == 429 or code == 429:
        expected = ProviderRateLimited
    elif status == 401 or code == 401:
        expected = TokenRejected
    else:
        expected = PAN123_ERRORS.get(code, ProviderError)
    assert type(raised.value) is expected
    assert raised.value.provider == "123pan"
    assert raised.value.provider_code == code


@PROPERTY
@given(st.binary())
def test_any_123pan_body_is_an_envelope_or_an_error(body):
    try:
        envelope = pan123.unwrap(Reply(200, body, {}))
    except (SharelinkError, TokenRejected):
        return
    assert envelope["code"] == 0


listed_items = st.fixed_dictionaries(
    {
        "shareId": st.integers(1, 2**53),
        "shareKey": st.text(alphabet=string.ascii_letters + string.digits + "-", min_size=1, max_size=20),
        "shareName": st.text(max_size=20),
        "sharePwd": st.one_of(st.just(""), st.text(min_size=1, max_size=8)),
        "expiration": beijing_times.map(lambda moment: moment.strftime("%Y-%m-%d %H:%M:%S")),
        "expired": st.sampled_from([0, 1]),
        "previewCount": st.integers(0, 2**31),
        "downloadCount": st.integers(0, 2**31),
        "saveCount": st.integers(0, 2**31),
    }
)


@PROPERTY
@given(listed_items, st.one_of(st.none(), st.text(max_size=10)))
def test_listed_share_is_the_item_normalized(item, request_id):
    share = _listed_share(item, request_id)

    assert share.share_id == str(item["shareId"])
    assert share.url == f"https://www.123pan.com/s/{item['shareKey']}"
    assert share.password == (item["sharePwd"] or None)
    assert share.expires_at == parse_expiration(item["expiration"])
    assert (share.expired, share.preview_count, share.download_count, share.save_count) == (
        bool(item["expired"]),
        item["previewCount"],
        item["downloadCount"],
        item["saveCount"],
    )
    assert share.file_ids == []
    assert share.provider_request_id == request_id
    dumped = share.model_dump(mode="json")
    assert dumped["expires_at"].endswith("Z")
    assert datetime.fromisoformat(dumped["expires_at"]) == share.expires_at


# --- KDocs

FILE_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,128}")
file_tokens = st.from_regex(FILE_TOKEN, fullmatch=True)
link_bodies = st.fixed_dictionaries(
    {"file_token": file_tokens, "permission": st.sampled_from(["read", "write"])},
    optional={
        "expire_days": st.sampled_from([0, 7, 30]),
        "allow_comment": st.booleans(),
        "status": st.sampled_from(["open", "close"]),
        "range": st.just("anyone"),
        "reset": st.booleans(),
    },
)


@PROPERTY
@given(st.data(), link_bodies)
def test_kdocs_body_and_its_provider_twin_are_the_same_request(data, body):
    twin = dict(body)
    if "expire_days" in twin and data.draw(st.booleans()):
        twin["period"] = twin.pop("expire_days")
    if "allow_comment" in twin and data.draw(st.booleans()):
        twin["ext_perm_list"] = ["comment"] if twin.pop("allow_comment") else []

    request = CreateLinkRequest.model_validate(body)

    assert CreateLinkRequest.model_validate(twin) == request
    assert link_body(CreateLinkRequest.model_validate(twin)) == link_body(request)


@PROPERTY
@given(link_bodies)
def test_link_body_is_what_file_links_md_says(body):
    request = CreateLinkRequest.model_validate(body)
    sent = link_body(request)

    assert sent["range"] == "anyone"
    assert sent["permission"] == body["permission"]
    assert sent.get("period") == body.get("expire_days")
    assert sent.get("status") == body.get("status")
    assert sent.get("reset") == body.get("reset")
    if "allow_comment" in body:
        assert sent["ext_perm_list"] == (["comment"] if body["allow_comment"] else [])
    else:
        assert "ext_perm_list" not in sent
    assert "file_token" not in sent
    assert CreateLinkRequest.model_validate(sent | {"file_token": request.file_token}) == request


@PROPERTY
@given(st.one_of(st.text(max_size=140), file_tokens, st.text(alphabet="ab-_/.%?#&= \n\t", max_size=6)))
@example("a\n")
@example("a" * 128)
@example("a" * 129)
@example("")
@example("\uff11\uff12\uff13")  # fullwidth digits: not ASCII
def test_file_token_accepts_exactly_the_safe_alphabet(token):
    accepted = FILE_TOKEN.fullmatch(token) is not None
    body = {"file_token": token, "permission": "read"}

    if accepted:
        assert CreateLinkRequest.model_validate(body).file_token == token
    else:
        _refused(CreateLinkRequest, body, "file_token")


@PROPERTY
@given(link_bodies, st.data())
def test_out_of_set_kdocs_values_are_refused_naming_the_field(body, data):
    breaks = {
        "permission": ("permission", st.text(max_size=8).filter(lambda text: text not in ("read", "write"))),
        "expire_days": ("period", st.integers().filter(lambda days: days not in (0, 7, 30))),
        "status": ("status", st.text(max_size=8).filter(lambda text: text not in ("open", "close"))),
        "range": ("range", st.text(max_size=8).filter(lambda text: text != "anyone")),
    }
    field = data.draw(st.sampled_from(sorted(breaks)))
    provider_name, values = breaks[field]
    spelled = data.draw(st.sampled_from([field, provider_name]))
    broken = {name: value for name, value in body.items() if name != field} | {spelled: data.draw(values)}

    _refused(CreateLinkRequest, broken, spelled)


@PROPERTY
@given(st.lists(st.text(max_size=8), min_size=1).filter(lambda perms: set(perms) - {"comment"}))
def test_ext_perm_list_holds_only_comment(perms):
    with pytest.raises(ValidationError):
        CreateLinkRequest.model_validate({"file_token": "777", "permission": "read", "ext_perm_list": perms})


link_data = st.fixed_dictionaries(
    {
        "sid": st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=12),
        "link_url": st.text(min_size=1, max_size=30),
    },
    optional={
        "filename": st.text(max_size=20),
        "link_permission": st.sampled_from(["read", "write"]),
        "status": st.sampled_from(["open", "close"]),
        "ext_perm_list": st.sampled_from([[], ["comment"]]),
    },
)


@PROPERTY
@given(link_data, st.integers(min_value=1, max_value=253402300799), file_tokens)
def test_expire_time_is_the_same_instant_in_rfc3339_utc(data, epoch, file_token):
    share = normalize(data | {"expire_time": epoch}, file_token)

    instant = datetime.fromtimestamp(epoch, UTC)
    assert share.expires_at == instant
    assert share.model_dump(mode="json")["expires_at"] == instant.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert share.share_id == share.share_key == data["sid"]
    assert share.url == data["link_url"]
    assert share.file_ids == [file_token]
    assert share.allow_comment == ("comment" in data.get("ext_perm_list", []))


@PROPERTY
@given(link_data, st.sampled_from([{"expire_time": 0}, {"expire_time": None}, {}]))
def test_no_expire_time_is_no_expiry(data, expiry):
    share = normalize(data | expiry, "777")

    assert share.expires_at is None
    assert share.model_dump(mode="json")["expires_at"] is None


KDOCS_ERRORS = {
    10001: ProviderRejected,
    10002: ProviderTimeout,
    10003: ProviderForbidden,
    30002: ProviderRateLimited,
    30012: ProviderNotFound,
    30014: ProviderNotFound,
}


def kdocs_reply(status: int, code: object, message_key: str = "msg") -> Reply:
    return Reply(status, json.dumps({"code": code, message_key: "m", "data": None}).encode(), {})


@PROPERTY
@given(
    st.one_of(st.integers().filter(lambda code: code != 0), st.sampled_from([*sorted(KDOCS_ERRORS), 30001])),
    st.sampled_from([200, 400, 401, 403, 404, 429, 500]),
    st.sampled_from(["msg", "message", "result"]),
)
def test_any_nonzero_kdocs_code_raises_in_either_answer_style(code, status, message_key):
    with pytest.raises((SharelinkError, TokenRejected)) as raised:
        kdocs.unwrap(kdocs_reply(status, code, message_key))

    if code == 30001:
        expected: type[Exception] = TokenRejected
    elif code == 30002 or status == 429:
        expected = ProviderRateLimited
    else:
        expected = KDOCS_ERRORS.get(code, ProviderError)
    assert type(raised.value) is expected
    assert raised.value.provider_code == code
    assert raised.value.message.endswith("m")


@PROPERTY
@given(st.binary(), st.sampled_from([200, 400, 500]))
def test_any_kdocs_body_is_data_or_an_error(body, status):
    try:
        data = kdocs.unwrap(Reply(status, body, {}))
    except (SharelinkError, TokenRejected):
        return
    assert status == 200
    assert isinstance(data, dict)
