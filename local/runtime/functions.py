"""Runs a template's functions as warm worker processes, each with its own environment, as Lambda does.

Lambda's limits hold here as AWS documents them:

- "Understanding the Lambda execution environment lifecycle": a new worker's INIT (the handler module's import, and
  the extensions' start before it) is not part of an invocation's timeout but has its own 10 s. One still
  initializing then is started again, "at the time of the first function invocation with the configured function
  timeout": this second INIT and the invocation together have the function's Timeout.
- "Configure Lambda function timeout": an invocation runs at most the function's Timeout (3 s when unset). One still
  running then is stopped and fails, reported as "Task timed out after N.NN seconds"; here its worker is killed, and
  the next invocation starts a new one.
- "Configure Lambda function memory": a function has its MemorySize and no more. A process past it is killed, the
  invocation failing with "Runtime exited with error: signal: killed"; here the worker's peak resident memory (VmHWM,
  which keeps a spike that came and went between two looks) is looked at every MEMORY_CHECK_S while it runs and once
  more when it answers, a worker past the size is killed, and the next invocation starts a new one. (Linux only:
  elsewhere there is no /proc to look at, and no limit.)
- "Configure Lambda function memory": a function gets CPU in proportion to its memory, the equivalent of one vCPU at
  1,769 MB. Its CPU work takes 1,769 / MemorySize times as long as on one core here, so an invocation's time counts
  as Lambda would count it (lambda_elapsed_s, from the worker's CPU time, every thread's): a function that does its
  work in time here at a small memory size times out as it would on Lambda, and the context's remaining time counts
  the same way (local.runtime.cpu_share). (INIT is counted as here: AWS documents no CPU share for it.)
- "Lambda quotas": the invocation payload is at most 6 MB each for request and response (synchronous invocation).
  Lambda refuses a larger request before the function runs (Invoke's RequestTooLargeException, HTTP 413); a larger
  response fails the invocation ("Response payload size exceeded maximum allowed payload size").
- CreateFunction's checks of the environment variables: at most 4 KB (their JSON), none of the keys Lambda
  reserves ("Defined runtime environment variables"). A function that fails them is refused and the stack does not
  start.
"""

from __future__ import annotations

import json
import os
import queue
import select
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, NoReturn

from local.runtime.cpu_share import lambda_elapsed_s
from local.template import FunctionSpec

LAYER_DIR = Path(__file__).resolve().parents[2] / "layers" / "sharelink"
MAX_WORKERS_PER_FUNCTION = 4
PASSED_THROUGH = ("PATH", "HOME", "LANG", "PYENV_VERSION", "PYENV_ROOT", "TMPDIR", "SSL_CERT_FILE")
SYNC_PAYLOAD_LIMIT_BYTES = 6 * 1024 * 1024
INIT_LIMIT_S = 10.0
ENVIRONMENT_LIMIT_BYTES = 4 * 1024
# What Lambda sets itself; TZ, listed with them, is left out: functions set it in practice.
RESERVED_VARIABLES = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_DEFAULT_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_LAMBDA_RUNTIME_API",
        "AWS_REGION",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "LAMBDA_RUNTIME_DIR",
        "LAMBDA_TASK_ROOT",
    }
)
# How often a running invocation's memory and time are looked at (and once more when it answers).
MEMORY_CHECK_S = 0.05
CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


class InvocationError(Exception):
    """The invocation failed (the handler raised or timed out, its answer was too large, its worker died, or Lambda
    refused it): API Gateway answers 500, SQS delivers the batch again."""


class FunctionTimedOut(InvocationError):
    """Still running after the function's Timeout: stopped, as Lambda stops it."""


class FunctionOutOfMemory(InvocationError):
    """Its process went past the function's MemorySize: killed, as Lambda kills it."""


class FunctionConfigurationRefused(Exception):
    """CreateFunction's InvalidParameterValueException: Lambda makes no such function."""


def check_environment(variables: dict[str, str]) -> None:
    """Refuses, in CreateFunction's words, what Lambda refuses of a function's environment variables."""
    reserved = sorted(RESERVED_VARIABLES.intersection(variables))
    if reserved:
        raise FunctionConfigurationRefused(
            "Lambda was unable to configure your environment variables because the environment variables you have"
            " provided contains reserved keys that are currently not supported for modification. Reserved keys used"
            f" in this request: {', '.join(reserved)}"
        )
    measured = json.dumps(variables, separators=(",", ":"))
    if len(measured.encode()) > ENVIRONMENT_LIMIT_BYTES:
        raise FunctionConfigurationRefused(
            "Lambda was unable to configure your environment variables because the environment variables you have"
            " provided exceeded the 4KB limit."
        )


class RequestTooLarge(InvocationError):
    """Lambda refused the invocation, its payload being over the synchronous limit: the function never ran."""


class _Worker:
    def __init__(self, spec: FunctionSpec, env: dict[str, str]) -> None:
        self.spec = spec
        self.env = env
        self.initialized = False
        self.process = self._spawn()

    def _spawn(self) -> subprocess.Popen[str]:
        extension = ["--secrets-extension"] if self.spec.secrets_extension else []
        return subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "local.runtime.worker", self.spec.module, self.spec.handler, *extension],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=self.env,
            text=True,
            cwd=Path(__file__).resolve().parents[2],
            process_group=0,  # a terminal's Ctrl-C goes to the stack, which stops this worker in its turn
        )

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def invoke(self, event: dict[str, Any]) -> Any:
        """The handler's result; a worker still busy at the function's Timeout, or past its memory, is killed."""
        deadline = self._initialize()
        started = (time.monotonic(), self._cpu_s())
        self._send(event, deadline_ms=(time.time() + deadline - time.monotonic()) * 1000)
        if not self._answers_by(deadline, started):
            self._time_out()
        return self._reply()

    def _initialize(self) -> float:
        """Waits for the worker's INIT to end, and gives the invocation's deadline (monotonic)."""
        if not self.initialized:
            if not self._answers_by(time.monotonic() + INIT_LIMIT_S):
                return self._initialize_again()
            self._line()
            self.initialized = True
        return time.monotonic() + self.spec.timeout_s

    def _initialize_again(self) -> float:
        """Lambda's retry of an INIT past its limit: the new INIT and the invocation share the function's Timeout."""
        self._kill()
        self.process = self._spawn()
        deadline = time.monotonic() + self.spec.timeout_s
        if not self._answers_by(deadline):
            self._time_out()
        self._line()
        self.initialized = True
        return deadline

    def _answers_by(self, deadline: float, started: tuple[float, float] | None = None) -> bool:
        """Whether the worker has written its line by `deadline`, its memory looked at meanwhile and once after. An
        invocation `started` at (monotonic time, worker's CPU time) has its time counted as Lambda would count it."""
        left_s = deadline - self._now(started)
        while not self._answers_within(min(MEMORY_CHECK_S, max(0.0, left_s))):
            self._check_memory()
            left_s = deadline - self._now(started)
            if left_s <= 0:
                return False
        self._check_memory()
        return started is None or self._now(started) < deadline

    def _now(self, started: tuple[float, float] | None) -> float:
        """The monotonic clock, ahead by what the invocation `started` then would have taken longer on Lambda."""
        now = time.monotonic()
        if started is None:
            return now
        wall_start, cpu_start = started
        cpu_s = max(0.0, self._cpu_s() - cpu_start)
        return wall_start + lambda_elapsed_s(now - wall_start, cpu_s, self.spec.memory_mb)

    def _cpu_s(self) -> float:
        """The worker's CPU time, every thread's (utime and stime of /proc/PID/stat), 0 once it has exited."""
        fields = self._proc("stat").rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S if fields else 0.0

    def _time_out(self) -> NoReturn:
        self._kill()
        raise FunctionTimedOut(f"Task timed out after {self.spec.timeout_s:.2f} seconds")

    def _check_memory(self) -> None:
        if self._peak_mb() > self.spec.memory_mb:
            self._kill()
            raise FunctionOutOfMemory("Runtime exited with error: signal: killed")

    def _peak_mb(self) -> float:
        """The worker's peak resident memory (VmHWM), 0 once it has exited."""
        for line in self._proc("status").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def _proc(self, name: str) -> str:
        """/proc/PID/<name> of the worker, empty once it has exited."""
        try:
            with open(f"/proc/{self.process.pid}/{name}") as file:
                return file.read()
        except (FileNotFoundError, ProcessLookupError):
            return ""

    def _kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def _send(self, event: dict[str, Any], deadline_ms: float) -> None:
        assert self.process.stdin
        message = {"event": event, "request_id": str(uuid.uuid4()), "deadline_ms": deadline_ms}
        try:
            self.process.stdin.write(json.dumps(message | {"memory_mb": self.spec.memory_mb}) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            pass  # it died while idle: _reply reports how it exited

    def _answers_within(self, timeout_s: float) -> bool:
        assert self.process.stdout
        # The worker writes nothing but one line per event, so nothing of an answer can wait in the reader's buffer.
        ready, _, _ = select.select([self.process.stdout], [], [], timeout_s)
        return bool(ready)

    def _line(self) -> dict[str, Any]:
        """The worker's next line: after its INIT, {"initialized": true}; after an event, its result or error."""
        assert self.process.stdout
        line = self.process.stdout.readline()
        if not line:
            raise InvocationError(f"worker exited with {self.process.wait()}")
        return dict(json.loads(line))

    def _reply(self) -> Any:
        reply = self._line()
        if "error" in reply:
            raise InvocationError(reply["error"]["errorMessage"])
        if _size(reply["result"]) > SYNC_PAYLOAD_LIMIT_BYTES:
            raise InvocationError(
                f"Response payload size exceeded maximum allowed payload size ({SYNC_PAYLOAD_LIMIT_BYTES} bytes)."
            )
        return reply["result"]

    def stop(self) -> None:
        if self.alive:
            self.process.terminate()
            self.process.wait(timeout=5)


def _size(payload: Any) -> int:
    return len(json.dumps(payload).encode())


class FunctionRuntime:
    """Up to MAX_WORKERS_PER_FUNCTION warm workers of one function, started on demand."""

    def __init__(self, spec: FunctionSpec, aws_env: dict[str, str]) -> None:
        check_environment(spec.environment)
        self.spec = spec
        self.env = {key: os.environ[key] for key in PASSED_THROUGH if key in os.environ} | aws_env
        self.env |= spec.environment | {
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "POWERTOOLS_TRACE_DISABLED": "true",
            "PYTHONPATH": os.pathsep.join([str(LAYER_DIR), str(spec.code_dir.resolve())]),
        }
        self.idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self.slots = threading.Semaphore(MAX_WORKERS_PER_FUNCTION)
        self.workers: list[_Worker] = []
        self.lock = threading.Lock()
        self.stopped = False

    def invoke(self, event: dict[str, Any]) -> Any:
        if _size(event) > SYNC_PAYLOAD_LIMIT_BYTES:
            raise RequestTooLarge(f"request payload over {SYNC_PAYLOAD_LIMIT_BYTES} bytes")
        with self.slots:
            worker = self._take_worker()
            try:
                return worker.invoke(event)
            finally:
                self._release(worker)

    def _take_worker(self) -> _Worker:
        try:
            return self.idle.get_nowait()
        except queue.Empty:
            return self._start_worker()

    def _start_worker(self) -> _Worker:
        with self.lock:
            if self.stopped:
                raise InvocationError(f"{self.spec.name} is stopped")
            worker = _Worker(self.spec, self.env)
            self.workers.append(worker)
            return worker

    def _release(self, worker: _Worker) -> None:
        if worker.alive:
            self.idle.put(worker)
            return
        with self.lock:
            self.workers.remove(worker)

    def stop(self) -> None:
        with self.lock:
            self.stopped = True
            workers = list(self.workers)
        for worker in workers:
            worker.stop()
