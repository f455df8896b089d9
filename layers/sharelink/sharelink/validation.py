"""Field rules shared by the provider request models, with messages a caller can act on."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator
from pydantic_core import PydanticCustomError

from sharelink.errors import InvalidRequest, MalformedJson, SharelinkError

# Pydantic error types that, at the top of the body, mean "not a JSON object" rather than "a field is wrong".
NOT_AN_OBJECT = {"json_invalid", "model_type", "model_attributes_type", "dict_type", "missing"}


def one_of(*allowed: Any) -> AfterValidator:
    listing = ", ".join(str(value) for value in allowed)

    def check(value: Any) -> Any:
        if value not in allowed:
            raise PydanticCustomError("one_of", "must be one of {allowed}", {"allowed": listing})
        return value

    return AfterValidator(check)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank", "must not be blank")
    return value


def _split_comma_string(value: Any) -> Any:
    """Accept the providers' "1,2,3" form beside a JSON array."""
    if isinstance(value, str):
        parts = [part.strip() for part in value.split(",")]
        return [int(part) if part.isascii() and part.isdigit() else part for part in parts]
    return value


NotBlank = Annotated[str, AfterValidator(_not_blank)]
CommaSeparated = BeforeValidator(_split_comma_string)


def validation_error(errors: Any) -> SharelinkError:
    """Pydantic errors (`loc` relative to the body) as malformed_json, or invalid_request naming every field."""
    if any(_not_an_object(error) for error in errors):
        return MalformedJson("the body must be a JSON object")
    details = [{"field": _field_name(error["loc"]), "problem": error.get("msg", error["type"])} for error in errors]
    message = "; ".join(f"{detail['field']}: {detail['problem']}" for detail in details)
    return InvalidRequest(message, details=details)


def _not_an_object(error: dict[str, Any]) -> bool:
    return error["type"] == "json_invalid" or (not error["loc"] and error["type"] in NOT_AN_OBJECT)


def _field_name(loc: Any) -> str:
    """("file_ids", 0) -> "file_ids[0]"; () -> "body" (the body as a whole)."""
    name = ""
    for part in loc:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"
