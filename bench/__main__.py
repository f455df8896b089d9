"""`make bench`: how long a batch of storage requests takes against a provider answering in 100 ms."""

from __future__ import annotations

import importlib
import json
import os
import statistics
import time
from typing import Any
from urllib.parse import quote_plus

from local.aws import LocalAws
from local.pan123_sim import Pan123Simulator
from local.stack import pan123_sim_secret
from local.worker import LambdaContext

BATCH = 10
PROVIDER_LATENCY_S = 0.1
RUNS = 5
BUCKET = "bench-requests"
TABLE = "bench-idempotency"


def main() -> None:
    # moto in its own process, as AWS is: in this one it would share the GIL with the function under test.
    aws = LocalAws(separate_process=True).start()
    sim = Pan123Simulator().start(lifetime_s=300)
    try:
        handler = _events_handler(aws, sim)
        sim.latency_s = PROVIDER_LATENCY_S
        timings = [_batch_wall_time(aws, handler, run) for run in range(RUNS)]
        print(
            f"batch: {BATCH} records, provider answering in {PROVIDER_LATENCY_S * 1000:.0f} ms: "
            f"median {statistics.median(timings) * 1000:.0f} ms over {RUNS} runs "
            f"(sequential would be >= {BATCH * PROVIDER_LATENCY_S * 1000:.0f} ms; goal <= 250 ms)"
        )
    finally:
        sim.stop()
        aws.stop()


def _events_handler(aws: LocalAws, sim: Pan123Simulator) -> Any:
    os.environ.update(aws.env)
    os.environ.update(
        {
            "PAN123_BASE_URL": sim.url,
            "PAN123_SECRET_ID": "bench/pan123",
            "IDEMPOTENCY_TABLE": TABLE,
            "POWERTOOLS_SERVICE_NAME": "bench",
            "POWERTOOLS_METRICS_NAMESPACE": "bench",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }
    )
    aws.client("secretsmanager").create_secret(Name="bench/pan123", SecretString=json.dumps(pan123_sim_secret(sim.url)))
    aws.client("s3").create_bucket(Bucket=BUCKET)
    aws.client("dynamodb").create_table(
        TableName=TABLE,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return importlib.import_module("pan123_events").lambda_handler


def _batch_wall_time(aws: LocalAws, handler: Any, run: int) -> float:
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


if __name__ == "__main__":
    main()
