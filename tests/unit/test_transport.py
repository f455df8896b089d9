"""HttpTransport against real sockets on loopback: what reaches the provider, and what a failure becomes."""

from __future__ import annotations

import socket

import pytest

from sharelink.errors import ProviderError, ProviderTimeout
from sharelink.transport import HttpTransport


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_connection_refused_is_a_provider_error():
    transport = HttpTransport(f"http://127.0.0.1:{closed_port()}", provider="123pan", timeout_s=1, retries=0)

    with pytest.raises(ProviderError) as raised:
        transport.send("POST", "/api/v1/share/create", body={})

    assert raised.value.code == "provider_error"
    assert "could not be reached" in raised.value.message


def test_post_read_timeout_is_not_resent(pan123_sim):
    pan123_sim.faults.add("timeout", delay=2, times=5)
    transport = HttpTransport(pan123_sim.url, provider="123pan", timeout_s=0.3)

    with pytest.raises(ProviderTimeout):
        transport.send("POST", "/api/v1/share/create", body={})

    assert len(pan123_sim.requests) == 1


def test_get_5xx_is_retried_then_reported(pan123_sim):
    pan123_sim.faults.add("http500", times=5)
    transport = HttpTransport(pan123_sim.url, provider="123pan", timeout_s=1, retries=2)

    reply = transport.send("GET", "/api/v1/share/list")

    assert reply.status == 500
    assert len(pan123_sim.requests) == 3
