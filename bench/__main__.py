"""`make bench`: how light sharelink is, each figure measured beside its baseline in the same run, where Lambda would
run it: a Lambda-like environment (LAMBDA_TASK_ROOT, region, the template's variables, credentials with a session
token, active tracing with a trace header per invocation), the layer as built, the code without bytecode, and the
modules Lambda's Python runtime has loaded before it imports a handler.

1. cold start: paired rounds of fresh interpreters, each handler's import against `import boto3, requests`;
2. warm overhead: in the function's own process, each create through `lambda_handler` paired with a bare
   `requests` POST of the same body to the same simulator, unsampled and sampled by X-Ray apart; then that
   process's peak memory (VmHWM);
3. batch: 10 storage requests against a provider answering in 100 ms, in the events function's own process;
4. uploads (bench/uploads.py): a file through the 123pan durable upload flow against a bare transfer loop.
   `python -m bench uploads` runs only this one.
The AWS emulator (as each function's role), the simulators and the secrets extension stand-in run in processes of
their own, as AWS and the extension do beside a function.
"""

from __future__ import annotations

import compileall
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import boto3

from bench import uploads
from local.aws.emulator import REGION, LocalAws
from local.aws.iam import function_roles
from local.aws.secrets_extension import SecretsExtension
from local.runtime.cpu_share import lambda_elapsed_s
from local.simulators.kdocs import KdocsSimulator
from local.simulators.pan123 import Pan123Simulator
from local.stack import TEMPLATE, kdocs_sim_secret, pan123_sim_secret
from local.template import FunctionSpec, Template

ROOT = Path(__file__).resolve().parent.parent
COLD = ("Pan123ApiFunction", "KdocsApiFunction", "DocsFunction", "Pan123EventsFunction", "KdocsEventsFunction")
COLD_GOALS = {"Pan123ApiFunction": 1.3, "KdocsApiFunction": 1.3, "DocsFunction": 1.3}
EVENTS_COLD_GOAL = 2.0
# What Lambda's Python runtime (awslambdaric's bootstrap) imports before the handler: not the handler's cost.
RUNTIME_PRELOAD = "import importlib, json, logging, decimal, traceback"
FLOOR = "import boto3, requests"
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six.py", "urllib3")
COLD_ROUNDS, WARM_CALLS, BATCH, BATCH_RUNS = 11, 300, 10, 5
PROVIDER_LATENCY_S = 0.1


def on_lambda(cpu_s: float, memory_mb: int) -> float:
    """The least time `cpu_s` of CPU work takes in a function of `memory_mb`, as the local runtime counts it: its share
    of a vCPU, and never less than here (a Python thread holding the GIL uses one vCPU at most)."""
    return lambda_elapsed_s(cpu_s, cpu_s, memory_mb)


def main() -> None:
    layer = build_layer()
    runtime = runtime_packages()
    aws = LocalAws(separate_process=True).start()
    pan123, kdocs = Pan123Simulator().start(lifetime_s=900), KdocsSimulator().start(lifetime_s=900)
    tracing_sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tracing_sink.bind(("127.0.0.1", 0))  # segments go somewhere, as to Lambda's X-Ray daemon
    extensions: list[SecretsExtension] = []
    try:
        secrets = {"Pan123Secret": pan123_sim_secret(pan123.url), "KdocsSecret": kdocs_sim_secret(kdocs.url)}
        template = deploy(aws, {"Pan123BaseUrl": pan123.url, "KdocsBaseUrl": kdocs.url}, secrets)
        functions = template.functions()
        base = {"AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{tracing_sink.getsockname()[1]}"}
        environments = {}
        for logical_id, spec in functions.items():
            env = lambda_env(spec, [layer, runtime], aws.role_env(logical_id)) | base
            if "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT" in env:
                extensions.append(SecretsExtension(env).start())
                env["PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"] = str(extensions[-1].port)
            environments[logical_id] = env
        cold({logical_id: (functions[logical_id], environments[logical_id]) for logical_id in COLD})
        print(
            f"warm overhead and peak memory ({WARM_CALLS} paired calls in the function's process, medians; "
            "X-Ray samples the first invocation each second and 5% of the others):"
        )
        for logical_id, event_name, sim, path, secret in (
            ("Pan123ApiFunction", "pan123_create.json", pan123, "/api/v1/share/create", secrets["Pan123Secret"]),
            ("KdocsApiFunction", "kdocs_create.json", kdocs, kdocs_create_path(), secrets["KdocsSecret"]),
        ):
            url = f"{sim.url}{path}"
            warm(functions[logical_id], environments[logical_id], event_name, url, secret["access_token"])
        batch(aws, template, environments["Pan123EventsFunction"], pan123)
        print(f"layer: {size_mb(layer):.1f} MB unzipped (goal <= 25 MB)")
    finally:
        for extension in extensions:
            extension.stop()
        tracing_sink.close()
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


def runtime_packages() -> Path:
    """What Lambda's python3.13 runtime provides besides the standard library: boto3 and its dependencies, at the
    versions this project pins. Only these: the venv's other packages (moto, awscrt that awscurl brings, which botocore
    imports when it finds it) are not in Lambda, so the function processes run without site-packages (`python -S`)."""
    target = ROOT / ".bench" / "runtime"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    site_packages = Path(boto3.__file__).parent.parent
    for name in RUNTIME_PACKAGES:
        source = site_packages / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target / name)
    compileall.compile_dir(target, quiet=1)  # Lambda's runtime ships its packages compiled
    return target


def deploy(aws: LocalAws, parameters: dict[str, str], secrets: dict[str, dict[str, str]]) -> Template:
    """The template's tables, queues, buckets and secrets in the emulator, and each function's role."""
    template = Template(TEMPLATE, parameters)
    template = template.with_deployed_arns(aws.deploy(template, secrets))
    aws.use_roles(function_roles(template))
    return template


def lambda_env(spec: FunctionSpec, paths: list[Path], role_env: dict[str, str]) -> dict[str, str]:
    """What Lambda gives the function's process: its code in LAMBDA_TASK_ROOT, first on the path, then the layer
    and the runtime's packages."""
    code = code_copy(spec.code_dir)
    return (
        {"PATH": os.environ["PATH"], "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
        | spec.environment
        | role_env
        | {
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "LAMBDA_TASK_ROOT": str(code),
            "PYTHONPATH": os.pathsep.join(str(path) for path in [code, *paths]),
        }
    )


def code_copy(code_dir: Path) -> Path:
    """The function's code as Lambda has it: sources only, no bytecode from earlier runs."""
    copy = Path(tempfile.mkdtemp(prefix="bench-code-"))
    shutil.copytree(code_dir, copy, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
    return copy


def import_time(statement: str, env: dict[str, str]) -> tuple[float, float]:
    """The statement's wall time and CPU time, in a fresh interpreter."""
    probe = (
        f"{RUNTIME_PRELOAD}; import time; t, c = time.perf_counter(), time.process_time(); {statement}; "
        "print(time.perf_counter() - t, time.process_time() - c)"
    )
    done = subprocess.run([sys.executable, "-S", "-c", probe], env=env, capture_output=True, text=True, check=True)
    wall, cpu = done.stdout.split()
    return float(wall), float(cpu)


def cold(handlers: dict[str, tuple[FunctionSpec, dict[str, str]]]) -> None:
    """Each round times the floor and every handler once; a handler's ratio is taken within its round."""
    floor_env = handlers["Pan123ApiFunction"][1]
    floors: list[float] = []
    timings: dict[str, list[tuple[float, float]]] = {logical_id: [] for logical_id in handlers}
    for _ in range(COLD_ROUNDS):
        floors.append(import_time(FLOOR, floor_env)[0])
        for logical_id, (function, env) in handlers.items():
            timings[logical_id].append(import_time(f"import {function.module}", env))
    print(f"cold start ({COLD_ROUNDS} paired rounds; median, and the range of the per-round ratio; CPU time, and the")
    print("least it takes with the function's share of a vCPU on Lambda):")
    print(f"  {FLOOR:22} {statistics.median(floors) * 1000:6.1f} ms")
    for logical_id, took in timings.items():
        ratios = [wall / floor for (wall, _), floor in zip(took, floors, strict=True)]
        cpu = statistics.median(cpu for _, cpu in took)
        memory_mb = handlers[logical_id][0].memory_mb
        goal = COLD_GOALS.get(logical_id, EVENTS_COLD_GOAL)
        print(
            f"  {logical_id:22} {statistics.median(wall for wall, _ in took) * 1000:6.1f} ms = "
            f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f}; goal <= {goal}); "
            f"CPU {cpu * 1000:.0f} ms, at {memory_mb} MB >= {on_lambda(cpu, memory_mb) * 1000:.0f} ms"
        )


def probe(mode: str, env: dict[str, str], spec: dict[str, Any]) -> dict[str, Any]:
    """bench.probe in a process of its own, with the function's environment."""
    env = env | {"PYTHONPATH": env["PYTHONPATH"] + os.pathsep + str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-S", "-m", "bench.probe", mode],
        input=json.dumps(spec),
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise RuntimeError(f"bench.probe {mode} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def kdocs_create_path() -> str:
    event = json.loads((ROOT / "events" / "kdocs_create.json").read_text())
    return f"/api/v1/openapi/personal/files/{json.loads(event['body'])['file_token']}/links"


def warm(function: FunctionSpec, env: dict[str, str], event_name: str, provider_url: str, token: str) -> None:
    event = json.loads((ROOT / "events" / event_name).read_text())
    spec = {
        "module": function.module,
        "event": event,
        "calls": WARM_CALLS,
        "bare_url": provider_url,
        "bare_body": json.loads(event["body"]),
        "bare_headers": {"Authorization": f"Bearer {token}", "Platform": "open_platform"},
    }
    figures = probe("warm", env, spec)
    for kind in ("unsampled", "sampled"):
        kind_figures = figures[kind]
        cpu_s = kind_figures["handler_cpu_ms"] / 1000
        print(
            f"  {function.logical_id:22} {kind:9} ({kind_figures['calls']:3}) {kind_figures['handler_ms']:5.2f} ms / "
            f"bare requests POST {kind_figures['bare_ms']:5.2f} ms = {kind_figures['ratio']:.2f} (goal <= 1.3); "
            f"CPU {cpu_s * 1000:.2f} ms, at {function.memory_mb} MB >= "
            f"{on_lambda(cpu_s, function.memory_mb) * 1000:.1f} ms"
        )
    print(f"  {function.logical_id:22} VmHWM after {WARM_CALLS} creates {figures['peak_mb']:.1f} MB (goal <= 64 MB)")


def batch(aws: LocalAws, template: Template, env: dict[str, str], sim: Pan123Simulator) -> None:
    """BATCH_RUNS batches, after one that warms the process up (its connections, its first idempotency write)."""
    bucket = template.physical_name("ShareRequestsBucket")
    events = [batch_event(aws, bucket, run) for run in range(BATCH_RUNS + 1)]
    sim.latency_s = PROVIDER_LATENCY_S
    try:
        figures = probe("batch", env, {"module": "pan123_events", "events": events})
    finally:
        sim.latency_s = 0.0
    timings = figures["batch_ms"][1:]
    cpu_s = statistics.median(figures["batch_cpu_ms"][1:]) / 1000
    memory_mb = template.functions()["Pan123EventsFunction"].memory_mb
    print(
        f"batch: {BATCH} records, provider answering in {PROVIDER_LATENCY_S * 1000:.0f} ms: "
        f"{statistics.median(timings):.0f} ms median of {BATCH_RUNS} ({min(timings):.0f}-{max(timings):.0f}; "
        f"sequential >= {BATCH * PROVIDER_LATENCY_S * 1000:.0f} ms; goal <= 200 ms); "
        f"VmHWM {figures['peak_mb']:.1f} MB; "
        f"CPU {cpu_s * 1000:.0f} ms, at {memory_mb} MB >= {on_lambda(cpu_s, memory_mb) * 1000:.0f} ms"
    )


def batch_event(aws: LocalAws, bucket: str, run: int) -> dict[str, Any]:
    """An SQS batch as the events function receives it, of requests written to the (versioned) bucket."""
    sample = json.loads((ROOT / "events" / "pan123_s3_sqs_versioned.json").read_text())["Records"][0]
    s3 = aws.client("s3")
    records = []
    for i in range(BATCH):
        key = f"requests/123pan/bench {uuid.uuid4()} {run}-{i}.json"
        body = json.dumps({"name": f"bench {run}-{i}", "expire_days": 7, "file_ids": [i + 1]})
        put = s3.put_object(Bucket=bucket, Key=key, Body=body)
        notification = json.loads(sample["body"])
        notification["Records"][0]["s3"]["bucket"] |= {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"}
        notification["Records"][0]["s3"]["object"] |= {
            "key": quote_plus(key),
            "size": len(body),
            "eTag": put["ETag"].strip('"'),
        }
        if "VersionId" in put:
            notification["Records"][0]["s3"]["object"]["versionId"] = put["VersionId"]
        records.append(sample | {"messageId": str(uuid.uuid4()), "body": json.dumps(notification)})
    return {"Records": records}


def size_mb(folder: Path) -> float:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) / 1e6


def run(argv: list[str]) -> None:
    """Every measurement, or only those named: `python -m bench uploads`."""
    if argv not in ([], ["uploads"]):
        sys.exit("usage: python -m bench [uploads]")
    if not argv:
        main()
    uploads.main()


if __name__ == "__main__":
    run(sys.argv[1:])
