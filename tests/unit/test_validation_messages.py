"""Error messages read as the rule wrote them: a rule's ValueError without pydantic's "Value error, " before it."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from sharelink.api import request_error
from sharelink.providers.kdocs import CreateLinkRequest
from sharelink.providers.pan123 import CreateShareRequest, TrafficUpdate
from sharelink.validation import MAX_REPORTED_PROBLEMS, validation_error

NO_SETTING = "give at least one of traffic_switch, traffic_limit_switch, traffic_limit"
OTHER_PERMISSION = 'ext_perm_list may only hold "comment"'


def errors_of(model: type[BaseModel], body: dict) -> list:
    with pytest.raises(ValidationError) as invalid:
        model.model_validate(body)
    return invalid.value.errors()


@pytest.mark.parametrize(
    ("model", "body", "problem"),
    [
        (TrafficUpdate, {"share_ids": [1]}, NO_SETTING),
        (CreateLinkRequest, {"file_token": "777", "permission": "read", "ext_perm_list": ["edit"]}, OTHER_PERMISSION),
    ],
)
def test_a_rule_raising_value_error_reads_as_its_own_text(model, body, problem):
    error = validation_error(errors_of(model, body))

    assert error.details == [{"field": "body", "problem": problem}]
    assert error.message == f"body: {problem}"


def test_an_http_body_error_reads_the_same():
    """Powertools puts where the value was ("body") first in `loc`; the problem is the rule's text all the same."""
    errors = [{**error, "loc": ("body", *error["loc"])} for error in errors_of(TrafficUpdate, {"share_ids": [1]})]

    assert request_error(errors).details == [{"field": "body", "problem": NO_SETTING}]


def test_pydantics_own_messages_are_kept():
    body = {"name": "a", "expire_days": 7, "file_ids": [1], "traffic_limit": -1}

    error = validation_error(errors_of(CreateShareRequest, body))

    assert error.details == [{"field": "traffic_limit", "problem": "Input should be greater than or equal to 0"}]


def test_thousands_of_bad_fields_are_named_up_to_a_bound_and_counted_past_it():
    body = {"name": "a", "expire_days": 7, "file_ids": [1]} | {f"k{number:04d}": 0 for number in range(5000)}

    error = validation_error(errors_of(CreateShareRequest, body))

    assert len(error.details) == MAX_REPORTED_PROBLEMS
    assert error.details[0] == {"field": "k0000", "problem": "Extra inputs are not permitted"}
    assert error.message.endswith(f"k0049: Extra inputs are not permitted; and {5000 - MAX_REPORTED_PROBLEMS} more")
