"""The "pull" benchmark's task function: 100 ms of work, and when it returned (epoch ms)."""

import time


def nap(input, ctx):
    time.sleep(input.get("ms", 100) / 1000)
    return {"returned_at_ms": time.time() * 1000}
