"""Field rules shared by the provider request models, with messages a caller can act on."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator
from pydantic_core import PydanticCustomError


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
        return [int(part) if part.isdigit() else part for part in parts]
    return value


NotBlank = Annotated[str, AfterValidator(_not_blank)]
CommaSeparated = BeforeValidator(_split_comma_string)
