"""An HTTP API function for the gateway and runtime limit tests: the query string says what it does.

sleep_s=N sleeps first, hold_mb=N holds N MiB of written memory while it sleeps, spike_mb=N writes N MiB and frees
them at once, spin_s=N keeps a CPU busy for N s of its time, write_to=PATH writes a byte to that file, pad_bytes=N
pads the answer, fail=1 raises. It answers its process id, the time it had left when called and when done, its
memory size and what writing gave (null, or the error). PROBE_INIT_S in its environment makes its INIT (this import)
last that many seconds.
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
    spin(float(query.get("spin_s", 0)))
    write_error = write(query["write_to"]) if "write_to" in query else None
    if query.get("fail"):
        raise RuntimeError("asked to fail")
    answer = {
        "pid": os.getpid(),
        "remaining_ms": [remaining_at_start, context.get_remaining_time_in_millis()],
        "memory_mb": context.memory_limit_in_mb,
        "padding": "x" * int(query.get("pad_bytes", 0)),
        "held_mb": len(held) // MB,
        "write_error": write_error,
    }
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(answer)}


def spin(cpu_s: float) -> None:
    until = time.process_time() + cpu_s
    while time.process_time() < until:
        pass


def write(path: str) -> str | None:
    try:
        with open(path, "wb") as file:
            file.write(b"x")
    except OSError as error:
        return str(error)
    return None
