"""`make bench`, uploads (alone: `python -m bench uploads`): a file dropped for 123pan, through the whole durable flow,
beside a bare loop doing only the transfer, in the same run against the same moto process and simulator.

1. throughput: a file through the 123pan upload function as deployed (`pan123_uploads.lambda_handler`: the durable
   UploadFlow with Pan123Steps, run by AWS's DurableFunctionTestRunner in a child process, timed there from the
   start of the execution to its end: settings, hash, folder, create, slices 4 at a time, complete, share, publish)
   against a bare loop in this process that makes one create, then reads the object in 16 MiB ranged GETs and posts
   each slice (its MD5 computed in the loop, as the slice endpoint needs it) one after another, then polls complete.
   BIG_MIB (256 MiB), RUNS times each, alternating; then MEMORY_MIB (1 GiB) once each.
2. memory: the peak RSS (VmHWM from /proc/self/status, read by the child at its end) of the child running the flow
   for a 16 MiB file and for the MEMORY_MIB file.

moto runs in its own process (LocalAws(separate_process=True)) and so does the simulator (started by this module in
a subprocess), so neither's memory nor its work is counted in the child. The simulator has instant upload off: the
same content is sent again on every run instead of being found by its MD5. The runner skips the durable waits'
wall-clock time (the 2 s between complete polls): deployed, they add that much wall time but no compute.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024
# Throughput is measured on 256 MiB several times, 1 GiB once: moto reads the whole object for each ranged GET, so
# here the time of an upload grows with the square of its size (one flow and one bare loop of 1 GiB take about 150 s
# on the project's 2-core machine, against a budget of ~4 minutes for this whole bench). Both sizes can be set.
BIG_MIB = int(os.environ.get("BENCH_UPLOAD_MIB") or 256)
MEMORY_MIB = int(os.environ.get("BENCH_UPLOAD_MEMORY_MIB") or 1024)
SMALL_MIB = 16
RUNS = int(os.environ.get("BENCH_UPLOAD_RUNS") or 3)
SLICE = 16 * MIB
BUCKET = "bench-uploads"
# The upload function's environment (template.yaml) but for the names of the resources made here.
FUNCTION_ENV = {
    "IDEMPOTENCY_TABLE": "bench-uploads-idempotency",
    "PAN123_SECRET_ID": "bench-uploads/pan123",
    "PAN123_UPLOAD_FOLDER": "/sharelink",
    "UPLOAD_EXPIRE_DAYS": "7",
    "EVENT_BUS_NAME": "default",
    "TOKEN_RENEWAL_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/bench-token-renewal",
    "POWERTOOLS_SERVICE_NAME": "pan123-upload",
    "POWERTOOLS_METRICS_NAMESPACE": "bench",
    "POWERTOOLS_TRACE_DISABLED": "true",
}
PLATFORM = {"Platform": "open_platform"}
VERIFYING = 20103
CHILD_TIMEOUT_S = 600
SIMULATOR_LIFETIME_S = 1800
FLOW_PATH = [ROOT / "layers" / "sharelink", ROOT / "functions" / "pan123", ROOT]


@dataclass(frozen=True)
class Stored:
    key: str
    version_id: str
    size: int
    md5: str


def main() -> None:
    from local.aws.emulator import LocalAws

    print(
        f"uploads to 123pan (throughput: a {BIG_MIB} MiB file, {RUNS} runs of each, alternating; memory: "
        f"{SMALL_MIB} MiB and {MEMORY_MIB} MiB files; moto and the simulator in processes of their own):",
        flush=True,
    )
    aws = LocalAws(separate_process=True).start()
    simulator = start_simulator()
    try:
        sim_url = simulator.stdout.readline().strip() if simulator.stdout else ""
        if not sim_url.startswith("http"):
            raise RuntimeError(f"the 123pan simulator did not start: {sim_url!r}")
        token = prepare(aws, sim_url)
        s3 = aws.client("s3")
        env = child_env(aws.env, sim_url)
        big = put_object(s3, "uploads/123pan/bench/big.bin", BIG_MIB * MIB)
        flows, bares = [], []
        for run in range(RUNS):
            flows.append(run_flow(env, big, run))
            bares.append(bare_loop(s3, sim_url, token, big))
            print(
                f"  run {run + 1}: flow {mib_s(big, flows[-1]['seconds']):5.1f} MiB/s ({flows[-1]['seconds']:.1f} s), "
                f"bare loop {mib_s(big, bares[-1]):5.1f} MiB/s ({bares[-1]:.1f} s)",
                flush=True,
            )
        throughput(big, flows, bares)
        small = put_object(s3, "uploads/123pan/bench/small.bin", SMALL_MIB * MIB)
        smalls = [run_flow(env, small, run) for run in range(RUNS)]
        large = big if MEMORY_MIB == BIG_MIB else put_object(s3, "uploads/123pan/bench/large.bin", MEMORY_MIB * MIB)
        larges = flows if large is big else [run_flow(env, large, 0)]
        memory(smalls, larges)
        if large is not big:
            once(large, larges[0], bare_loop(s3, sim_url, token, large))
        ranged_gets(s3, small, large)
    finally:
        stop(simulator)
        aws.stop()


def throughput(big: Stored, flows: list[dict[str, Any]], bares: list[float]) -> None:
    flow_rates = [mib_s(big, flow["seconds"]) for flow in flows]
    bare_rates = [mib_s(big, seconds) for seconds in bares]
    ratios = [flow / bare for flow, bare in zip(flow_rates, bare_rates, strict=True)]
    flow, bare, ratio = statistics.median(flow_rates), statistics.median(bare_rates), statistics.median(ratios)
    print(
        f"  throughput, {BIG_MIB} MiB, median: flow {flow:.1f} MiB/s (runs {spread(flow_rates)}) / bare loop "
        f"{bare:.1f} MiB/s (runs {spread(bare_rates)}) = {ratio:.2f} (runs {spread(ratios, 2)}; goal >= 0.7)"
    )
    hashing, slices = (statistics.median(flow["steps"][name] for flow in flows) for name in ("hash", "slices"))
    print(f"  in the flow, median: the hash step {hashing:.1f} s, the slices step {slices:.1f} s", flush=True)


def memory(smalls: list[dict[str, Any]], larges: list[dict[str, Any]]) -> None:
    small_mb, large_mb = ([flow["vmhwm_kb"] / 1024 for flow in flows] for flows in (smalls, larges))
    print(
        f"  peak RSS (VmHWM) of the flow's process: {SMALL_MIB} MiB file {max(small_mb):.1f} MB (runs "
        f"{spread(small_mb)}), {MEMORY_MIB} MiB file {max(large_mb):.1f} MB (runs {spread(large_mb)}): "
        f"{max(large_mb) - max(small_mb):+.1f} MB (goal within 50 MB)",
        flush=True,
    )


def once(large: Stored, flow: dict[str, Any], bare: float) -> None:
    """The large file's throughput from its one run: moto's whole-object read per ranged GET dominates it."""
    rate, bare_rate = mib_s(large, flow["seconds"]), mib_s(large, bare)
    print(
        f"  throughput, {MEMORY_MIB} MiB, one run: flow {rate:.1f} MiB/s ({flow['seconds']:.1f} s; hash step "
        f"{flow['steps']['hash']:.1f} s, slices step {flow['steps']['slices']:.1f} s) / bare loop {bare_rate:.1f} "
        f"MiB/s ({bare:.1f} s) = {rate / bare_rate:.2f} (goal >= 0.7)",
        flush=True,
    )


def ranged_gets(s3: Any, small: Stored, large: Stored) -> None:
    """What one 16 MiB ranged GET costs in moto, which reads the whole object for every range (its S3 does not)."""
    timings = {}
    for stored in (small, large):
        calls = [timed_get(s3, stored, start) for start in [0, stored.size - SLICE, stored.size // 2 // SLICE * SLICE]]
        timings[stored.size] = statistics.median(calls)
    print(
        f"  the emulator: a 16 MiB ranged GET takes {timings[small.size] * 1000:.0f} ms from a {SMALL_MIB} MiB "
        f"object, {timings[large.size] * 1000:.0f} ms from a {MEMORY_MIB} MiB one (median of 3)",
        flush=True,
    )


def timed_get(s3: Any, stored: Stored, start: int) -> float:
    started = time.perf_counter()
    answer = s3.get_object(
        Bucket=BUCKET, Key=stored.key, VersionId=stored.version_id, Range=f"bytes={start}-{start + SLICE - 1}"
    )
    answer["Body"].read()
    return time.perf_counter() - started


def spread(values: list[float], digits: int = 1) -> str:
    return f"{min(values):.{digits}f}-{max(values):.{digits}f}"


def mib_s(stored: Stored, seconds: float) -> float:
    return stored.size / MIB / seconds


def start_simulator() -> subprocess.Popen[str]:
    """The 123pan simulator in a process of its own; it prints its URL, and ends when our end of its stdin closes."""
    return subprocess.Popen(
        [sys.executable, "-m", "bench.uploads", "simulator"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )


def serve_simulator() -> None:
    from local.simulators.pan123 import Pan123Simulator

    sim = Pan123Simulator(instant_upload=False).start(lifetime_s=SIMULATOR_LIFETIME_S)
    print(sim.url, flush=True)
    sys.stdin.read()
    sim.stop()


def stop(process: subprocess.Popen[str]) -> None:
    if process.stdin:
        process.stdin.close()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.terminate()
        process.wait(timeout=10)


def prepare(aws: Any, sim_url: str) -> str:
    """The upload function's resources: the idempotency table, the 123pan secret, a versioned bucket."""
    from local.stack import TEMPLATE, pan123_sim_secret
    from local.template import Template

    aws.create_table(FUNCTION_ENV["IDEMPOTENCY_TABLE"], Template(TEMPLATE).resources["IdempotencyTable"]["Properties"])
    secret = pan123_sim_secret(sim_url)
    aws.client("secretsmanager").create_secret(Name=FUNCTION_ENV["PAN123_SECRET_ID"], SecretString=json.dumps(secret))
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return str(secret["access_token"])


def put_object(s3: Any, key: str, size: int) -> Stored:
    """An object of `size` bytes (each MiB different), put in 64 MiB parts from a file on disk."""
    from boto3.s3.transfer import TransferConfig

    block = os.urandom(MIB)
    md5 = hashlib.md5(usedforsecurity=False)
    with tempfile.TemporaryFile() as data:
        for number in range(size // MIB):
            chunk = number.to_bytes(8) + block[8:]
            md5.update(chunk)
            data.write(chunk)
        data.seek(0)
        config = TransferConfig(multipart_threshold=64 * MIB, multipart_chunksize=64 * MIB, max_concurrency=2)
        s3.upload_fileobj(data, BUCKET, key, Config=config)
    version = s3.head_object(Bucket=BUCKET, Key=key)["VersionId"]
    return Stored(key, version, size, md5.hexdigest())


def child_env(aws_env: dict[str, str], sim_url: str) -> dict[str, str]:
    """The upload function's environment, acting as the emulator's admin (its long-term keys, no session token)."""
    keep = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}
    flow_path = os.pathsep.join(map(str, FLOW_PATH))
    return keep | aws_env | FUNCTION_ENV | {"PYTHONPATH": flow_path, "PAN123_BASE_URL": sim_url}


def run_flow(env: dict[str, str], stored: Stored, run: int) -> dict[str, Any]:
    """One durable execution in a fresh process; what it measured of itself."""
    obj = {"bucket": BUCKET, "key": stored.key, "version_id": stored.version_id, "size": stored.size}
    # As the starter names it (sharelink.upload_starts), one per run: each run's share is a new one.
    name = hashlib.sha256(f"{BUCKET}\n{stored.key}\n{stored.version_id}\n{run}".encode()).hexdigest()[:48]
    event = {"object": obj, "execution": f"123pan-{name}"}
    with tempfile.TemporaryDirectory(prefix="bench-upload-") as folder:
        answer, logs = Path(folder) / "answer.json", Path(folder) / "logs.txt"
        with logs.open("w") as log:
            done = subprocess.run(
                [sys.executable, "-m", "bench.uploads", "flow", json.dumps(event), str(answer)],
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=CHILD_TIMEOUT_S,
                check=False,
            )
        if done.returncode or not answer.exists():
            raise RuntimeError(f"the flow's process failed ({done.returncode}):\n{logs.read_text()[-4000:]}")
        measured: dict[str, Any] = json.loads(answer.read_text())
    if measured["status"] != "SUCCEEDED" or measured["result"].get("status") != "created":
        raise RuntimeError(f"the upload did not make a share: {measured}")
    return measured


def run_flow_here(event_json: str, answer_path: str) -> None:
    """In the child: the deployed handler module, run once by AWS's durable test runner, timed; then VmHWM."""
    from aws_durable_execution_sdk_python_testing.runner import DurableFunctionTestRunner

    import pan123_uploads

    started = time.perf_counter()
    with DurableFunctionTestRunner(handler=pan123_uploads.lambda_handler) as runner:
        outcome = runner.run(input=event_json, execution_timeout=CHILD_TIMEOUT_S)
    seconds = time.perf_counter() - started
    steps = {operation.name: operation for operation in outcome.operations}
    measured = {
        "seconds": seconds,
        "status": outcome.status.name,
        "result": json.loads(outcome.result) if outcome.result else {},
        "error": str(outcome.error) if outcome.error else None,
        "steps": {
            "hash": _took(steps.get("hash")),
            "slices": _took(steps.get("slice")),
        },
        "vmhwm_kb": vmhwm_kb(),
    }
    Path(answer_path).write_text(json.dumps(measured))


def _took(operation: Any) -> float:
    """A step's time from its checkpoints (no durable wait inside, so the runner's skipped time does not count)."""
    if operation is None or operation.start_timestamp is None or operation.end_timestamp is None:
        return float("nan")
    return float((operation.end_timestamp - operation.start_timestamp).total_seconds())


def vmhwm_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def bare_loop(s3: Any, sim_url: str, token: str, stored: Stored) -> float:
    """The transfer alone: create, each 16 MiB range GET from S3 posted as a slice in turn, complete polled."""
    import requests

    session = requests.Session()
    headers = {"Authorization": f"Bearer {token}"} | PLATFORM
    started = time.perf_counter()
    body = {"parentFileID": 0, "filename": "bare.bin", "etag": stored.md5, "size": stored.size, "duplicate": 1}
    created = _data(session.post(f"{sim_url}/upload/v2/file/create", json=body, headers=headers, timeout=30))
    server, slice_size = created["servers"][0], int(created["sliceSize"])
    for number, start in enumerate(range(0, stored.size, slice_size), start=1):
        end = min(start + slice_size, stored.size) - 1
        data = s3.get_object(Bucket=BUCKET, Key=stored.key, VersionId=stored.version_id, Range=f"bytes={start}-{end}")
        piece = data["Body"].read()
        fields = {
            "preuploadID": created["preuploadID"],
            "sliceNo": str(number),
            "sliceMD5": hashlib.md5(piece, usedforsecurity=False).hexdigest(),
        }
        answer = session.post(
            f"{server}/upload/v2/file/slice",
            data=fields,
            files={"slice": (f"slice{number}", piece)},
            headers=headers,
            timeout=60,
        )
        _data(answer)
    while True:
        answer = session.post(
            f"{sim_url}/upload/v2/file/upload_complete",
            json={"preuploadID": created["preuploadID"]},
            headers=headers,
            timeout=60,
        ).json()
        if answer["code"] == 0 and answer["data"]["completed"]:
            break
        if answer["code"] != VERIFYING:
            raise RuntimeError(f"complete answered {answer}")
    return time.perf_counter() - started


def _data(answer: Any) -> Any:
    document = answer.json()
    if document["code"] != 0:
        raise RuntimeError(f"123pan simulator answered {document}")
    return document["data"]


if __name__ == "__main__":
    match sys.argv[1:]:
        case ["simulator"]:
            serve_simulator()
        case ["flow", event_json, answer_path]:
            run_flow_here(event_json, answer_path)
        case _:
            main()
