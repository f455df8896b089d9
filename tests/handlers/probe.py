"""An HTTP API function for the gateway and runtime limit tests: the query string says what it does.

sleep_s=N sleeps first, pad_bytes=N pads the answer, fail=1 raises. It answers its process id, the time it had left
when called and when done, and its memory size.
"""

import json
import os
import time


def lambda_handler(event, context):
    query = event.get("queryStringParameters") or {}
    remaining_at_start = context.get_remaining_time_in_millis()
    time.sleep(float(query.get("sleep_s", 0)))
    if query.get("fail"):
        raise RuntimeError("asked to fail")
    answer = {
        "pid": os.getpid(),
        "remaining_ms": [remaining_at_start, context.get_remaining_time_in_millis()],
        "memory_mb": context.memory_limit_in_mb,
        "padding": "x" * int(query.get("pad_bytes", 0)),
    }
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(answer)}
