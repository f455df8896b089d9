"""An HTTP API function for the gateway and runtime limit tests: the query string says what it does.

sleep_s=N sleeps first, hold_mb=N holds N MiB of written memory while it sleeps, spike_mb=N writes N MiB and frees
them at once, pad_bytes=N pads the answer, fail=1 raises. It answers its process id, the time it had left
when called and when done, and its memory size. PROBE_INIT_S in its environment makes its INIT (this import) last
that many seconds.
"""

import json
import os
import time

MB = 1024 * 1024

time.sleep(float(os.environ.get("PROBE_INIT_S", 0)))


def lambda_handler(event, context):
    query = event.get("queryStringParameters") or {}
    remaining_at_start = context.get_remaining_time_in_millis()
    held = b"x" * (int(query.get("hold_mb", 0)) * MB)  # written, so resident
    spike = b"x" * (int(query.get("spike_mb", 0)) * MB)
    del spike  # freed before the answer: only the process's peak (VmHWM) remembers it
    time.sleep(float(query.get("sleep_s", 0)))
    if query.get("fail"):
        raise RuntimeError("asked to fail")
    answer = {
        "pid": os.getpid(),
        "remaining_ms": [remaining_at_start, context.get_remaining_time_in_millis()],
        "memory_mb": context.memory_limit_in_mb,
        "padding": "x" * int(query.get("pad_bytes", 0)),
        "held_mb": len(held) // MB,
    }
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(answer)}
