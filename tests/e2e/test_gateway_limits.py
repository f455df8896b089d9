"""The limits AWS holds, held by the local gateway and Lambda runtime: each answered as API Gateway answers it.

A test-only function (tests/handlers/probe.py) runs in a real worker behind a real gateway on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from local.runtime.functions import FunctionOutOfMemory, FunctionRuntime, FunctionTimedOut
from local.runtime.gateway import Gateway
from local.stack import TEMPLATE
from local.template import FunctionSpec, HttpRoute, Template

HANDLERS = Path(__file__).resolve().parents[1] / "handlers"
TIMEOUT_S = 2
MEMORY_MB = 512
MB = 1024 * 1024
WAIT_S = 30


def probe_runtime(timeout_s: int = TIMEOUT_S, init_s: float = 0, memory_mb: int = MEMORY_MB) -> FunctionRuntime:
    spec = FunctionSpec(
        logical_id="Probe",
        name="probe",
        code_dir=HANDLERS,
        module="probe",
        handler="lambda_handler",
        environment={"PROBE_INIT_S": str(init_s)},
        timeout_s=timeout_s,
        memory_mb=memory_mb,
    )
    return FunctionRuntime(spec, {})


def probe_gateway(runtime: FunctionRuntime, **options: float) -> Gateway:
    routes = [HttpRoute("GET", "/probe", "Probe"), HttpRoute("POST", "/probe", "Probe")]
    return Gateway(routes, {"Probe": runtime}, **options)


@contextmanager
def serving(runtime: FunctionRuntime, **options: float) -> Iterator[Gateway]:
    gateway = probe_gateway(runtime, **options).start()
    try:
        yield gateway
    finally:
        gateway.stop()
        runtime.stop()


@contextmanager
def running(*runtimes: FunctionRuntime) -> Iterator[None]:
    """Stops the runtimes' workers once the block ends."""
    try:
        yield
    finally:
        for runtime in runtimes:
            runtime.stop()


@pytest.fixture
def runtime() -> Iterator[FunctionRuntime]:
    probe = probe_runtime()
    with running(probe):
        yield probe


@pytest.fixture
def gateway(runtime: FunctionRuntime) -> Iterator[Gateway]:
    with serving(runtime) as running:
        yield running


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_body_over_10_mb_is_refused_before_any_function_runs(gateway, runtime):
    body = b"x" * (11 * MB)

    routed = requests.post(f"{gateway.url}/probe", data=body, timeout=WAIT_S)
    unrouted = requests.post(f"{gateway.url}/nowhere", data=body, timeout=WAIT_S)

    assert (routed.status_code, routed.json()) == (413, {"message": "Request Entity Too Large"})
    assert (unrouted.status_code, unrouted.json()) == (413, {"message": "Request Entity Too Large"})
    assert runtime.workers == []


def test_a_request_over_lambdas_6_mb_is_refused_before_the_function_runs(gateway, runtime):
    response = requests.post(f"{gateway.url}/probe", data=b"x" * (7 * MB), timeout=WAIT_S)

    assert (response.status_code, response.json()) == (413, {"message": "Request Entity Too Large"})
    assert runtime.workers == []


def test_an_answer_over_lambdas_6_mb_is_an_internal_server_error(gateway):
    response = requests.get(f"{gateway.url}/probe", params={"pad_bytes": 7 * MB}, timeout=WAIT_S)

    assert (response.status_code, response.json()) == (500, {"message": "Internal Server Error"})


def test_a_function_error_is_an_internal_server_error(gateway):
    response = requests.get(f"{gateway.url}/probe", params={"fail": 1}, timeout=WAIT_S)

    assert (response.status_code, response.json()) == (500, {"message": "Internal Server Error"})


def test_a_function_over_its_timeout_is_stopped_and_its_worker_replaced(gateway):
    first_pid = requests.get(f"{gateway.url}/probe", timeout=WAIT_S).json()["pid"]

    timed_out = requests.get(f"{gateway.url}/probe", params={"sleep_s": TIMEOUT_S * 5}, timeout=WAIT_S)
    after = requests.get(f"{gateway.url}/probe", timeout=WAIT_S)

    assert (timed_out.status_code, timed_out.json()) == (500, {"message": "Internal Server Error"})
    assert not process_exists(first_pid)
    assert after.status_code == 200
    assert after.json()["pid"] != first_pid


# Writing hundreds of MiB takes CPU, which counts 3.5 times at 512 MB: these functions have time enough for memory
# alone to stop them.
def test_a_function_past_its_memory_size_is_killed_and_its_worker_replaced():
    with serving(probe_runtime(timeout_s=WAIT_S)) as gateway:
        within = requests.get(f"{gateway.url}/probe", params={"hold_mb": MEMORY_MB // 2}, timeout=WAIT_S)
        first_pid = within.json()["pid"]
        killed = requests.get(f"{gateway.url}/probe", params={"hold_mb": MEMORY_MB, "sleep_s": 1}, timeout=WAIT_S)
        after = requests.get(f"{gateway.url}/probe", timeout=WAIT_S)

    assert (within.status_code, within.json()["held_mb"]) == (200, MEMORY_MB // 2)
    assert (killed.status_code, killed.json()) == (500, {"message": "Internal Server Error"})
    assert not process_exists(first_pid)
    assert after.status_code == 200
    assert after.json()["pid"] != first_pid


def test_memory_past_the_size_freed_before_the_answer_still_kills():
    runtime = probe_runtime(timeout_s=WAIT_S)
    with running(runtime), pytest.raises(FunctionOutOfMemory, match="Runtime exited with error: signal: killed"):
        runtime.invoke({"queryStringParameters": {"spike_mb": str(MEMORY_MB)}})

    assert runtime.workers == []


def test_an_answer_after_the_integration_timeout_is_503_and_the_function_still_finishes():
    runtime = probe_runtime(timeout_s=10)
    with serving(runtime, integration_timeout_s=0.2) as gateway:
        late = requests.get(f"{gateway.url}/probe", params={"sleep_s": 1}, timeout=WAIT_S)
        wait_until(lambda: runtime.idle.qsize() == 1, "the function to finish and its worker to be free")
        (worker,) = runtime.workers

        assert (late.status_code, late.json()) == (503, {"message": "Service Unavailable"})
        assert worker.alive
        assert requests.get(f"{gateway.url}/probe", timeout=WAIT_S).json()["pid"] == worker.process.pid


def test_the_context_counts_down_from_the_timeout_and_has_the_memory_size(gateway):
    answer = requests.get(f"{gateway.url}/probe", params={"sleep_s": 0.05}, timeout=WAIT_S).json()

    at_start, at_end = answer["remaining_ms"]
    assert 0 < at_end < at_start <= TIMEOUT_S * 1000
    assert answer["memory_mb"] == MEMORY_MB


def test_init_has_its_own_time_not_the_first_invocations():
    runtime = probe_runtime(timeout_s=1, init_s=1.5)
    with running(runtime):
        answer = runtime.invoke({})

    assert answer["statusCode"] == 200
    assert json.loads(answer["body"])["remaining_ms"][0] > 500


def test_an_init_past_its_limit_is_started_again_within_the_functions_timeout(monkeypatch):
    monkeypatch.setattr("local.runtime.functions.INIT_LIMIT_S", 0.5)
    long_enough, too_short = probe_runtime(timeout_s=5, init_s=1), probe_runtime(timeout_s=1, init_s=1.5)
    with running(long_enough, too_short):
        answer = long_enough.invoke({})
        with pytest.raises(FunctionTimedOut, match=r"Task timed out after 1\.00 seconds"):
            too_short.invoke({})

    # The second INIT's second came out of the invocation's five.
    assert json.loads(answer["body"])["remaining_ms"][0] <= 4000
    assert too_short.workers == []


def test_cpu_work_takes_as_long_as_on_the_share_of_a_vcpu_the_memory_size_buys():
    # One second of CPU: 3.46 s on Lambda at 512 MB (0.29 vCPU), past a 3 s timeout; 1 s at 1,769 MB (one vCPU).
    small, one_vcpu = probe_runtime(timeout_s=3, memory_mb=512), probe_runtime(timeout_s=3, memory_mb=1769)
    spinning = {"queryStringParameters": {"spin_s": "1"}}
    with running(small, one_vcpu):
        with pytest.raises(FunctionTimedOut, match=r"Task timed out after 3\.00 seconds"):
            small.invoke(spinning)
        answer = one_vcpu.invoke(spinning)

    assert answer["statusCode"] == 200
    assert small.workers == []


def test_the_time_left_counts_cpu_work_at_the_memory_sizes_share():
    """What a deadline-aware function sees: half a second of CPU at 512 MB (0.29 vCPU) uses up 1.73 s of its time."""
    small = probe_runtime(timeout_s=10, memory_mb=512)
    with running(small):
        before, after = json.loads(small.invoke({"queryStringParameters": {"spin_s": "0.5"}})["body"])["remaining_ms"]

    assert before - after >= int(0.5 * 1769 / 512 * 1000) - 1


def test_the_file_system_is_read_only_but_tmp(runtime, tmp_path):
    in_code, in_tmp = HANDLERS / "written-by-probe", tmp_path / "written-by-probe"
    try:
        errors = {
            path: json.loads(runtime.invoke({"queryStringParameters": {"write_to": str(path)}})["body"])["write_error"]
            for path in (in_code, in_tmp)
        }
        written_in_code = in_code.exists()
    finally:
        in_code.unlink(missing_ok=True)

    assert errors[in_code] == f"[Errno 30] Read-only file system: '{in_code}'"
    assert not written_in_code
    assert errors[in_tmp] is None
    assert in_tmp.read_bytes() == b"x"


def test_the_templates_timeouts_and_memory_reach_the_runtime():
    functions = Template(TEMPLATE).functions()

    assert (functions["Pan123ApiFunction"].timeout_s, functions["Pan123ApiFunction"].memory_mb) == (29, 1024)
    assert (functions["Pan123EventsFunction"].timeout_s, functions["Pan123EventsFunction"].memory_mb) == (60, 1769)


def test_head_and_options_without_a_route_of_their_own_are_not_found(gateway, runtime):
    head = requests.head(f"{gateway.url}/probe", timeout=WAIT_S)
    options = requests.options(f"{gateway.url}/probe", timeout=WAIT_S)

    assert (head.status_code, head.content) == (404, b"")
    assert (options.status_code, options.json()) == (404, {"message": "Not Found"})
    assert runtime.workers == []


def test_a_burst_of_connections_waits_in_the_listen_backlog_until_served(runtime):
    gateway = probe_gateway(runtime)  # listening, not yet accepting
    port = gateway.server.server_address[1]
    clients = [socket.socket() for _ in range(120)]
    try:
        for client in clients:
            client.setblocking(False)
            client.connect_ex(("127.0.0.1", port))
        # Beyond the backlog the kernel drops the handshake: those connections never complete while nobody accepts.
        connected = wait_connected(clients)
        gateway.start()
        statuses = [status_of_request(client) for client in clients]
    finally:
        for client in clients:
            client.close()
        gateway.stop()

    assert connected == len(clients)
    assert statuses == [404] * len(clients)


def wait_connected(clients: list[socket.socket]) -> int:
    """How many completed their handshake, waiting a bounded while for all of them."""
    deadline = time.monotonic() + 3
    connected = sum(map(is_connected, clients))
    while connected < len(clients) and time.monotonic() < deadline:
        time.sleep(0.05)
        connected = sum(map(is_connected, clients))
    return connected


def is_connected(client: socket.socket) -> bool:
    try:
        client.getpeername()
    except OSError:
        return False
    return True


def status_of_request(client: socket.socket) -> int:
    client.setblocking(True)
    client.settimeout(WAIT_S)
    client.sendall(b"GET /nowhere HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    status_line = client.makefile("rb").readline()
    return int(status_line.split()[1])


def test_200_concurrent_connections_all_get_an_answer(gateway):
    with ThreadPoolExecutor(max_workers=200) as pool:
        statuses = list(
            pool.map(lambda _: requests.get(f"{gateway.url}/probe", timeout=WAIT_S).status_code, range(200))
        )

    assert statuses == [200] * 200
