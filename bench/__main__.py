"""`make bench`: how light sharelink is, each figure measured beside its baseline in the same run.

1. cold start: a fresh interpreter importing each handler module from the built layer (with its .pyc), against
   a fresh interpreter importing boto3 and requests;
2. warm overhead: one create through `lambda_handler` against a bare `requests.Session().post` of the same body
   to the same simulator;
3. batch: 10 storage requests against a provider answering in 100 ms;
4. the built layer's unzipped size and a warm function's peak RSS;
5. uploads (bench/uploads.py): a file through the 123pan durable upload flow against a bare transfer loop, and the
   flow's peak RSS for a small and a large file. `python -m bench uploads` runs only this one.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

from bench import uploads
from local.aws.emulator import LocalAws
from local.runtime.worker import LambdaContext
from local.simulators.kdocs import KdocsSimulator
from local.simulators.pan123 import Pan123Simulator
from local.stack import TEMPLATE, kdocs_sim_secret, pan123_sim_secret
from local.template import Template

ROOT = Path(__file__).resolve().parent.parent
HANDLERS = {"pan123_api": "pan123", "kdocs_api": "kdocs", "pan123_events": "pan123", "kdocs_events": "kdocs"}
ENVIRONMENT = {
    "PAN123_SECRET_ID": "bench/pan123",
    "KDOCS_SECRET_ID": "bench/kdocs",
    "IDEMPOTENCY_TABLE": "bench-idempotency",
    "POWERTOOLS_SERVICE_NAME": "bench",
    "POWERTOOLS_METRICS_NAMESPACE": "bench",
    "POWERTOOLS_TRACE_DISABLED": "true",
}
BUCKET = "bench-requests"
COLD_RUNS, WARM_CALLS, BATCH, BATCH_RUNS = 9, 300, 10, 5


def main() -> None:
    layer = build_layer()
    print("cold start (median of fresh interpreters, built layer, .pyc):")
    baseline = median_import("import boto3, requests", [])
    for module, folder in HANDLERS.items():
        took = median_import(f"import {module}", [str(layer), str(code_copy(folder))])
        print(
            f"  {module:14} {took * 1000:6.1f} ms / import boto3, requests {baseline * 1000:5.1f} ms = "
            f"{took / baseline:.2f} (goal <= 1.3)"
        )
    aws = LocalAws(separate_process=True).start()
    pan123, kdocs = Pan123Simulator().start(lifetime_s=600), KdocsSimulator().start(lifetime_s=600)
    try:
        prepare(aws, pan123, kdocs)
        print("warm overhead (median of one call):")
        warm_overhead("pan123_api", "pan123_create.json", pan123, "/api/v1/share/create")
        warm_overhead("kdocs_api", "kdocs_create.json", kdocs, "/api/v1/openapi/personal/files/777/links")
        batch(aws, pan123)
        print(f"layer: {size_mb(layer):.1f} MB unzipped (goal <= 25 MB)")
        print(
            f"peak RSS of a warm function after {WARM_CALLS} creates: {peak_rss_mb(aws, pan123, layer):.1f} MB "
            "(goal < 128 MB)"
        )
    finally:
        pan123.stop()
        kdocs.stop()
        aws.stop()


def build_layer() -> Path:
    """The layer as `sam build` makes it (same Makefile target), for this machine's platform so it can run here."""
    target = ROOT / ".bench" / "layer"
    shutil.rmtree(target, ignore_errors=True)
    platform = f"manylinux2014_{os.uname().machine}"
    subprocess.run(
        ["make", "-s", "-C", str(ROOT / "layers" / "sharelink"), "build-SharelinkLayer",
         f"ARTIFACTS_DIR={target}", f"PYTHON={sys.executable}", f"PLATFORM={platform}"],
        check=True,
    )  # fmt: skip
    return target / "python"


def code_copy(folder: str) -> Path:
    """The function's code as Lambda has it: sources only, no bytecode from earlier runs."""
    copy = Path(tempfile.mkdtemp(prefix="bench-code-"))
    shutil.copytree(ROOT / "functions" / folder, copy, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
    return copy


def median_import(statement: str, path: list[str]) -> float:
    probe = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    env = {"PATH": os.environ["PATH"], "AWS_DEFAULT_REGION": "us-east-1", "PYTHONDONTWRITEBYTECODE": "1"}
    env |= ENVIRONMENT | {"PYTHONPATH": os.pathsep.join(path)}
    timings = [
        float(subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True).stdout)
        for _ in range(COLD_RUNS)
    ]
    return statistics.median(timings)


def prepare(aws: LocalAws, pan123: Pan123Simulator, kdocs: KdocsSimulator) -> None:
    os.environ.update(aws.env | ENVIRONMENT | {"PAN123_BASE_URL": pan123.url, "KDOCS_BASE_URL": kdocs.url})
    secrets = aws.client("secretsmanager")
    secrets.create_secret(Name="bench/pan123", SecretString=json.dumps(pan123_sim_secret(pan123.url)))
    secrets.create_secret(Name="bench/kdocs", SecretString=json.dumps(kdocs_sim_secret(kdocs.url)))
    aws.client("s3").create_bucket(Bucket=BUCKET)
    aws.create_table(ENVIRONMENT["IDEMPOTENCY_TABLE"], Template(TEMPLATE).resources["IdempotencyTable"]["Properties"])
    sys.path[:0] = [str(ROOT / "layers" / "sharelink"), *(str(ROOT / "functions" / f) for f in ("pan123", "kdocs"))]


def warm_overhead(module: str, event_name: str, sim: Any, provider_path: str) -> None:
    handler = importlib.import_module(module).lambda_handler
    event = json.loads((ROOT / "events" / event_name).read_text())
    session = requests_session()
    body = json.loads(event["body"])
    bare = [timed(lambda: session.post(sim.url + provider_path, json=body, timeout=5)) for _ in range(WARM_CALLS)]
    with contextlib.redirect_stdout(io.StringIO()):  # the function's log lines: Lambda ships them, not a terminal
        handler(event, LambdaContext("bench"))
        through = [timed(lambda: handler(event, LambdaContext("bench"))) for _ in range(WARM_CALLS)]
    handled, baseline = statistics.median(through), statistics.median(bare)
    print(
        f"  {module:14} {handled * 1000:6.2f} ms / bare requests post {baseline * 1000:5.2f} ms = "
        f"{handled / baseline:.2f} (goal <= 1.5)"
    )


def requests_session() -> Any:
    import requests

    return requests.Session()


def timed(call: Any) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def batch(aws: LocalAws, sim: Pan123Simulator) -> None:
    handler = importlib.import_module("pan123_events").lambda_handler
    sim.latency_s = 0.1
    with contextlib.redirect_stdout(io.StringIO()):
        timings = [batch_wall_time(aws, handler, run) for run in range(BATCH_RUNS)]
    sim.latency_s = 0.0
    print(
        f"batch: {BATCH} records, provider answering in 100 ms: {statistics.median(timings) * 1000:.0f} ms median "
        f"of {BATCH_RUNS} (sequential >= {BATCH * 100} ms; goal <= 250 ms)"
    )


def batch_wall_time(aws: LocalAws, handler: Any, run: int) -> float:
    s3 = aws.client("s3")
    records = []
    for i in range(BATCH):
        key = f"requests/123pan/run {run} request {i}.json"
        body = json.dumps({"name": f"bench {run}-{i}", "expire_days": 7, "file_ids": [i + 1]})
        etag = s3.put_object(Bucket=BUCKET, Key=key, Body=body)["ETag"].strip('"')
        notification = {
            "Records": [{"s3": {"bucket": {"name": BUCKET}, "object": {"key": quote_plus(key), "eTag": etag}}}]
        }
        records.append({"messageId": f"{run}-{i}", "body": json.dumps(notification), "eventSource": "aws:sqs"})
    started = time.perf_counter()
    answer = handler({"Records": records}, LambdaContext("bench"))
    elapsed = time.perf_counter() - started
    assert answer == {"batchItemFailures": []}, answer
    return elapsed


def size_mb(folder: Path) -> float:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) / 1e6


def peak_rss_mb(aws: LocalAws, sim: Pan123Simulator, layer: Path) -> float:
    """A fresh process that loads the 123pan handler from the built layer and serves WARM_CALLS creates."""
    probe = (
        "import json, resource, sys\n"
        "from local.runtime.worker import LambdaContext\n"
        "import pan123_api\n"
        f"event = json.load(open({str(ROOT / 'events' / 'pan123_create.json')!r}))\n"
        f"for _ in range({WARM_CALLS}): pan123_api.lambda_handler(event, LambdaContext('bench'))\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    )
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(layer), str(code_copy("pan123")), str(ROOT)])}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    return int(done.stderr.strip().splitlines()[-1]) / 1024


def run(argv: list[str]) -> None:
    """Every measurement, or only those named: `python -m bench uploads`."""
    if argv not in ([], ["uploads"]):
        sys.exit("usage: python -m bench [uploads]")
    if not argv:
        main()
    uploads.main()


if __name__ == "__main__":
    run(sys.argv[1:])
