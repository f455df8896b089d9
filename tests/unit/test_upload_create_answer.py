"""How 123pan's create answer is read: an instant upload is trusted only with a file id."""

from __future__ import annotations

import pytest

from sharelink.errors import ProviderError
from sharelink.uploads.pan123 import _created

TO_SEND = {"fileID": 0, "preuploadID": "p1", "reuse": False, "sliceSize": 16777216, "servers": ["http://up.example"]}


def test_an_instant_upload_with_a_file_id_sends_nothing():
    assert _created({"fileID": 42, "preuploadID": "", "reuse": True, "sliceSize": 16777216, "servers": []}) == {
        "file_id": 42,
        "preupload_id": "",
        "reuse": True,
        "slice_size": 0,
        "server": "",
    }


def test_slices_go_to_the_first_server_in_the_providers_size():
    assert _created(TO_SEND) == {
        "file_id": 0,
        "preupload_id": "p1",
        "reuse": False,
        "slice_size": 16777216,
        "server": "http://up.example",
    }


def test_reuse_without_a_file_id_is_not_trusted():
    assert _created(TO_SEND | {"reuse": True})["reuse"] is False


@pytest.mark.parametrize(
    "answer",
    [
        None,
        {"fileID": 0, "reuse": True},
        TO_SEND | {"servers": []},
        TO_SEND | {"sliceSize": 0},
        TO_SEND | {"preuploadID": ""},
    ],
)
def test_an_answer_without_what_slices_need_is_a_provider_error(answer):
    with pytest.raises(ProviderError):
        _created(answer)
