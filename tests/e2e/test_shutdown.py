"""Stopping the local stack: in order (the event sources before the emulator and the simulators), quietly, and with
nothing left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from local.stack import LocalStack, docs_example

ROOT = Path(__file__).resolve().parents[2]
PAN123_CREATE = "/api/v1/share/create"
READY_LINE = "Ctrl-C stops it."
START_WAIT_S = 80
STOP_WAIT_S = 30
WAIT_S = 60


def wait_until(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.1)


def test_stop_ends_the_event_sources_first_and_prints_nothing(capfd, monkeypatch):
    thread_errors: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", thread_errors.append)
    unraisable: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    stack = LocalStack(sim_lifetime_s=300)
    try:
        stack.start()
        sources = [*stack.pollers, *stack.schedules]
        threads = [thread for source in sources for thread in source.threads]
        assert len(stack.pollers) == len(stack.template.queue_subscriptions()) and stack.schedules
        assert all(thread.is_alive() for thread in threads)
        # Work in flight when the stop comes: the events function waits on the simulator's answer to a create.
        sim = stack.sims["pan123"]
        sim.faults.add("timeout", path=PAN123_CREATE, delay=5)
        body = json.dumps(docs_example("pan123_create.json"), ensure_ascii=False).encode()
        bucket = stack.template.physical_name("ShareRequestsBucket")
        stack.aws.client("s3").put_object(Bucket=bucket, Key="requests/123pan/in flight.json", Body=body)
        wait_until(lambda: any(request.path == PAN123_CREATE for request in sim.requests), "the create to reach 123pan")
        # What still ran when the emulator and the simulators were stopped.
        running_then: dict[str, list[str]] = {}
        parts = {"emulator": stack.aws} | {f"simulator {key}": simulator for key, simulator in stack.sims.items()}
        for name, part in parts.items():
            monkeypatch.setattr(part, "stop", _noting(part.stop, name, threads, running_then))
    finally:
        started = time.monotonic()
        stack.stop()
        took_s = time.monotonic() - started

    assert running_then == {"emulator": [], "simulator pan123": [], "simulator kdocs": []}
    assert [thread.name for thread in threads if thread.is_alive()] == []
    assert took_s < 20  # the running invocation was stopped, not waited for
    output = "".join(capfd.readouterr())
    assert "Traceback" not in output, output
    assert thread_errors == []
    assert unraisable == []


def test_a_start_that_fails_part_way_stops_what_it_started(monkeypatch):
    def no_gateway(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no gateway today")

    monkeypatch.setattr("local.stack.Gateway", no_gateway)
    stack = LocalStack(sim_lifetime_s=300)

    with pytest.raises(RuntimeError, match="no gateway today"), stack:
        pytest.fail("the stack started")

    assert stack.aws.process is not None and stack.aws.process.poll() is not None
    assert stack.durable is not None and stack.durable.process is not None
    assert stack.durable.process.poll() is not None
    assert all(sim._stopped for sim in stack.sims.values()) and stack.sims
    assert all(runtime.stopped for runtime in stack.runtimes.values()) and stack.runtimes


def _noting(
    stop: Callable[[], None], name: str, threads: list[threading.Thread], running_then: dict[str, list[str]]
) -> Callable[[], None]:
    def noting_stop() -> None:
        running_then[name] = [thread.name for thread in threads if thread.is_alive()]
        stop()

    return noting_stop


def test_ctrl_c_stops_make_run_quietly():
    """SIGINT to the process group, as a terminal's Ctrl-C sends it, once the stack is up and its demo done."""
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "PAN123_", "KDOCS_"))
    }
    running = subprocess.Popen(
        [sys.executable, "-u", "-m", "local", "run", "--port", "0"],
        cwd=ROOT,
        env=environment | {"PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # a group of its own, as a command typed in a terminal is
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert running.stdout
        for line in running.stdout:
            lines.append(line)
            if line.strip() == READY_LINE:
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    children: set[int] = set()
    try:
        if not ready.wait(START_WAIT_S):
            pytest.fail(f"no {READY_LINE!r} within {START_WAIT_S} s:\n{''.join(lines)}")
        children = _descendants(running.pid)
        assert children  # the emulator, the durable execution service, the workers
        os.killpg(running.pid, signal.SIGINT)
        try:
            returncode = running.wait(timeout=STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {STOP_WAIT_S} s after Ctrl-C:\n{''.join(lines)}")
    finally:
        if running.poll() is None:
            os.killpg(running.pid, signal.SIGKILL)
            running.wait()
        for pid in _descendants_alive(children):
            os.kill(pid, signal.SIGKILL)
    reader.join(timeout=10)
    output = "".join(lines)

    assert returncode == 0, output
    assert "Traceback" not in output, output
    assert _descendants_alive(children) == set()


def _descendants(pid: int) -> set[int]:
    """Every process under `pid`, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _descendants_alive(pids: set[int]) -> set[int]:
    """Those of `pids` still running (a zombie has ended)."""
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive
