"""A function that shows instance reuse (module state survives) and when it ran."""

import json
import os
import time

CALLS = 0


def handler(event, context):
    global CALLS
    CALLS += 1
    started = time.time()
    time.sleep(float(json.loads(event or b"{}").get("sleep", 0)))
    print(f"warm: call {CALLS} in {os.getpid()}")
    return {"pid": os.getpid(), "calls": CALLS, "started": started, "ended": time.time(),
            "request_id": context.request_id}
