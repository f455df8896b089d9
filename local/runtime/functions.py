"""Runs a template's functions as warm worker processes, each with its own environment, as Lambda does."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

from local.template import FunctionSpec

LAYER_DIR = Path(__file__).resolve().parents[2] / "layers" / "sharelink"
MAX_WORKERS_PER_FUNCTION = 4
PASSED_THROUGH = ("PATH", "HOME", "LANG", "PYENV_VERSION", "PYENV_ROOT", "TMPDIR", "SSL_CERT_FILE")


class InvocationError(Exception):
    """The handler raised, or its worker died: API Gateway answers 500, SQS redelivers."""


class _Worker:
    def __init__(self, spec: FunctionSpec, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "local.runtime.worker", spec.module, spec.handler],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
            cwd=Path(__file__).resolve().parents[2],
        )

    def invoke(self, event: dict[str, Any]) -> Any:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps({"event": event, "request_id": str(uuid.uuid4())}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise InvocationError(f"worker exited with {self.process.wait()}")
        reply = json.loads(line)
        if "error" in reply:
            raise InvocationError(reply["error"]["errorMessage"])
        return reply["result"]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=5)


class FunctionRuntime:
    """Up to MAX_WORKERS_PER_FUNCTION warm workers of one function, started on demand."""

    def __init__(self, spec: FunctionSpec, aws_env: dict[str, str]) -> None:
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

    def invoke(self, event: dict[str, Any]) -> Any:
        with self.slots:
            worker = self._take_worker()
            try:
                return worker.invoke(event)
            finally:
                if worker.process.poll() is None:
                    self.idle.put(worker)

    def _take_worker(self) -> _Worker:
        try:
            return self.idle.get_nowait()
        except queue.Empty:
            worker = _Worker(self.spec, self.env)
            self.workers.append(worker)
            return worker

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
