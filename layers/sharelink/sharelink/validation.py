"""Field and body rules shared by the provider request models, with messages a caller can act on."""

from __future__ import annotations

import json
import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator, AliasChoices, BaseModel, BeforeValidator, Field
from pydantic_core import PydanticCustomError

from sharelink.errors import InvalidRequest, MalformedJson, RequestTooLarge, SharelinkError

# Pydantic error types that, at the top of the body, mean "not a JSON object" rather than "a field is wrong".
NOT_AN_OBJECT = {"json_invalid", "model_type", "model_attributes_type", "dict_type", "missing"}
MAX_BODY_BYTES = 64 * 1024
# The bad fields a rejection names; past them its message says how many more. Fifty names come to at most twice the
# 64 KiB a request holds (message and details).
MAX_REPORTED_PROBLEMS = 50
# A share request is flat; the deepest legitimate body is an object holding a list of ids.
MAX_DEPTH = 8
# Integers are 64-bit at most (19 digits); longer digit runs are refused before Python builds a huge int.
MAX_INT_DIGITS = 19
INT64_MAX = 2**63 - 1
# Characters that show nothing: a text made only of these (and white space) is blank.
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "Me"})


def one_of(*allowed: Any) -> AfterValidator:
    listing = ", ".join(str(value) for value in allowed)

    def check(value: Any) -> Any:
        if value not in allowed:
            raise PydanticCustomError("one_of", "must be one of {allowed}", {"allowed": listing})
        return value

    return AfterValidator(check)


def _valid_unicode(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise PydanticCustomError("invalid_unicode", "must be valid Unicode text (no lone surrogates)") from None
    return value


def _not_blank(value: str) -> str:
    if all(char.isspace() or unicodedata.category(char) in INVISIBLE_CATEGORIES for char in value):
        raise PydanticCustomError("blank", "must not be blank (white space or invisible characters only)")
    return value


def _ascii_digits_only(value: Any) -> Any:
    """The providers' "1,2,3" form beside a JSON array; only ASCII digits make a number."""
    if isinstance(value, str):
        parts = [part.strip() for part in value.split(",")]
        return [
            int(part) if part.isascii() and part.isdigit() and len(part) <= MAX_INT_DIGITS else part for part in parts
        ]
    return value


def alias(name: str, provider_name: str, **field: Any) -> Any:
    """A field that also accepts the provider's own name for it (never both at once, see `one_spelling`)."""
    return Field(validation_alias=AliasChoices(name, provider_name), **field)


CommaSeparated = BeforeValidator(_ascii_digits_only)
# Valid Unicode (no lone surrogates) that shows something; lengths are the provider module's.
VisibleText = Annotated[str, AfterValidator(_valid_unicode), AfterValidator(_not_blank)]
Int64 = Annotated[int, Field(ge=-INT64_MAX - 1, le=INT64_MAX)]


def one_spelling(model: type[BaseModel], data: Any) -> Any:
    """Refuse a body naming one setting twice (`name` and `shareName`): which one was meant cannot be told."""
    if not isinstance(data, dict):
        return data
    for name, field in model.model_fields.items():
        choices = field.validation_alias.choices if isinstance(field.validation_alias, AliasChoices) else []
        given = [str(choice) for choice in choices if isinstance(choice, str) and choice in data]
        if len(given) > 1:
            raise two_spellings(name, given)
    return data


def two_spellings(name: str, given: list[str]) -> PydanticCustomError:
    return PydanticCustomError(
        "two_spellings",
        "{spellings} are two spellings of one setting: send one",
        {"field": name, "spellings": " and ".join(given)},
    )


def parse_json_body(raw: str | bytes) -> Any:
    """JSON within the limits of a share request: size, nesting depth, 64-bit integers, no NaN or Infinity."""
    if len(raw.encode() if isinstance(raw, str) else raw) > MAX_BODY_BYTES:
        raise RequestTooLarge(f"the body is over {MAX_BODY_BYTES // 1024} KiB")
    try:
        document = json.loads(raw, parse_int=_bounded_int, parse_constant=_no_constant, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise MalformedJson("the body is nested too deep") from None
    except DuplicateKey as duplicate:
        raise MalformedJson(f"the body names {duplicate} more than once") from None
    except ValueError:
        raise MalformedJson("the body is not valid JSON") from None
    if not isinstance(document, dict):
        raise MalformedJson("the body must be a JSON object")
    if _depth(document) > MAX_DEPTH:
        raise MalformedJson(f"the body is nested more than {MAX_DEPTH} levels deep")
    return document


class OversizedInteger:
    """Stands for an integer literal too long to be a 64-bit value; no integer field accepts it."""

    def __repr__(self) -> str:
        return "<integer over 64 bits>"


def _bounded_int(literal: str) -> int | OversizedInteger:
    return int(literal) if len(literal.lstrip("-")) <= MAX_INT_DIGITS else OversizedInteger()


class DuplicateKey(ValueError):
    """A JSON object naming one key twice: which value was meant cannot be told (and a checked value could hide
    behind an unchecked twin)."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) < len(pairs):
        names = [name for name, _ in pairs]
        raise DuplicateKey(next(repr(name) for name in names if names.count(name) > 1))
    return document


def ascii_digits(value: Any) -> Any:
    """Query numbers as the caller wrote them: ASCII digits only (no sign, spaces, underscores or other digits)."""
    if isinstance(value, str) and not (value.isascii() and value.isdigit() and len(value) <= MAX_INT_DIGITS):
        raise PydanticCustomError("ascii_digits", "must be a number written with the digits 0-9")
    return value


def fits_int64(value: str | None) -> str | None:
    if value is not None and int(value) > INT64_MAX:
        raise PydanticCustomError("int64", "must be at most {limit}", {"limit": INT64_MAX})
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _depth(document: Any) -> int:
    """How deep containers nest (a scalar is 0, a flat object 1), counted up to MAX_DEPTH + 1 at most."""
    depth, level = 0, [document]
    while depth <= MAX_DEPTH:
        level = [
            child
            for node in level
            if isinstance(node, dict | list)
            for child in (node.values() if isinstance(node, dict) else node)
        ]
        if not level:
            return depth
        depth += 1
    return depth


def validation_error(errors: Any) -> SharelinkError:
    """Pydantic errors (`loc` relative to the body) as malformed_json, or invalid_request naming every field, up to
    MAX_REPORTED_PROBLEMS: 64 KiB of request holds thousands of unknown fields, whose report would outgrow what a
    rejection can be carried in (an EventBridge entry, 256 KB; the idempotency record, DynamoDB's 400 KB)."""
    if any(_not_an_object(error) for error in errors):
        return MalformedJson("the body must be a JSON object")
    details = [{"field": _field_of(error), "problem": _problem(error)} for error in errors[:MAX_REPORTED_PROBLEMS]]
    message = "; ".join(f"{detail['field']}: {detail['problem']}" for detail in details)
    if len(errors) > MAX_REPORTED_PROBLEMS:
        message += f"; and {len(errors) - MAX_REPORTED_PROBLEMS} more"
    return InvalidRequest(message, details=details)


def _not_an_object(error: dict[str, Any]) -> bool:
    return error["type"] == "json_invalid" or (not error["loc"] and error["type"] in NOT_AN_OBJECT)


def _problem(error: dict[str, Any]) -> str:
    """A rule's own ValueError reads as its text: pydantic's message puts "Value error, " before it."""
    raised = (error.get("ctx") or {}).get("error")
    if error["type"] == "value_error" and raised is not None:
        return str(raised)
    return error.get("msg", error["type"])


def _field_of(error: dict[str, Any]) -> str:
    return str((error.get("ctx") or {}).get("field") or _field_name(error["loc"]))


def _field_name(loc: Any) -> str:
    """("file_ids", 0) -> "file_ids[0]"; () -> "body" (the body as a whole)."""
    name = ""
    for part in loc:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"
