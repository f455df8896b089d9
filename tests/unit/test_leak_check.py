"""The leak check itself: it must see a secret where one is, and nothing where none is."""

from __future__ import annotations

from local.simulators.pan123 import Pan123Simulator
from tests.leaks import leaked


def test_a_token_in_a_log_line_is_found_and_a_clean_line_is_not():
    sim = Pan123Simulator(clients={"leak-client": "leak-client-secret"})
    token = sim.issue_token("leak-client")

    assert leaked([f'{{"message": "calling", "authorization": "Bearer {token}"}}']) == 1
    assert leaked(["a line with leak-client-secret in it"]) == 1
    assert leaked(['{"message": "share created", "share_id": "87187530"}']) == 0
    sim.reset()  # forget the token: later tests' output may not contain it anyway
