"""HttpTransport sending multipart bodies over real sockets on loopback: which calls are sent again, and whole."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from local.simulators.pan123 import Pan123Simulator
from sharelink.errors import ProviderTimeout
from sharelink.transport import FilePart, HttpTransport, Multipart, RetryPolicy
from sharelink.uploads.pan123 import SLICE_RETRIES, SLICE_RETRY

PATH = "/probe"  # not a provider path: the simulator records it and answers 404
DATA = bytes(range(256)) * 300


@pytest.fixture(scope="module")
def sim() -> Iterator[Pan123Simulator]:
    with Pan123Simulator() as simulator:
        yield simulator


@pytest.fixture(autouse=True)
def fresh(sim: Pan123Simulator) -> None:
    sim.reset()


class Source:
    def __init__(self) -> None:
        self.produced = 0

    def __call__(self):
        self.produced += 1
        for start in range(0, len(DATA), 4096):
            yield DATA[start : start + 4096]


def form(source: Source) -> Multipart:
    return Multipart([("sliceNo", "1")], FilePart("slice", "blob", len(DATA), source))


def slice_transport(sim: Pan123Simulator, timeout_s: float = 1, policy: RetryPolicy = SLICE_RETRY) -> HttpTransport:
    return HttpTransport(sim.url, provider="123pan", timeout_s=timeout_s, retries=SLICE_RETRIES, retry_policy=policy)


def whole(call) -> bool:
    return call.body["slice"]["size"] == len(DATA) and call.body["sliceNo"] == "1"


def test_a_multipart_body_goes_out_with_its_length(sim):
    source = Source()

    reply = HttpTransport(sim.url, provider="123pan", timeout_s=1).send("POST", PATH, form=form(source))

    (call,) = sim.requests
    assert reply.status == 404
    assert whole(call)
    assert call.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert int(call.headers["Content-Length"]) > len(DATA)
    assert "Transfer-Encoding" not in call.headers


def test_by_default_a_multipart_post_is_not_sent_again(sim):
    sim.faults.add("http500", path=PATH)

    reply = HttpTransport(sim.url, provider="123pan", timeout_s=1).send("POST", PATH, form=form(Source()))

    assert reply.status == 500
    assert len(sim.requests) == 1


@pytest.mark.parametrize("fault", ["http500", "http429", "close", "timeout"])
def test_the_slice_policy_sends_a_post_again_whole(sim, fault):
    sim.faults.add(fault, path=PATH, delay=2)
    source = Source()

    reply = slice_transport(sim).send("POST", PATH, form=form(source))

    assert reply.status == 404
    assert len(sim.requests) == 2
    assert all(whole(call) for call in sim.requests)
    assert source.produced == 2


def test_the_slice_policy_gives_up_after_its_retries(sim):
    sim.faults.add("timeout", path=PATH, delay=1, times=SLICE_RETRIES + 1)

    no_backoff = replace(SLICE_RETRY, backoff_factor=0, backoff_jitter=0)

    with pytest.raises(ProviderTimeout):
        slice_transport(sim, timeout_s=0.3, policy=no_backoff).send("POST", PATH, form=form(Source()))

    assert len(sim.requests) == SLICE_RETRIES + 1
