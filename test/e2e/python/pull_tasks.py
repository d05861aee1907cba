"""Task functions the end-to-end tests run in real Python worker processes.

Each appends what it saw to the JSON-lines file named by EDGETASK_TEST_LOG, so a test can
check what happened inside the worker (which task, which attempt, whether it saw the cancel).
"""

import json
import os
import threading
import time

_lock = threading.Lock()


def record(event):
    path = os.environ.get("EDGETASK_TEST_LOG")
    if not path:
        return
    line = json.dumps({"at": time.time(), "pid": os.getpid(), **event})
    with _lock, open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")


def echo(input, ctx):
    record({"event": "run", "task": ctx.task_id, "attempt": ctx.attempt, "worker": ctx.worker_id})
    return {"echo": input, "attempt": ctx.attempt, "worker": ctx.worker_id}


def nap(input, ctx):
    """Sleeps input["ms"] milliseconds."""
    record({"event": "start", "task": ctx.task_id, "attempt": ctx.attempt, "worker": ctx.worker_id})
    time.sleep(input.get("ms", 100) / 1000)
    record({"event": "end", "task": ctx.task_id, "attempt": ctx.attempt, "worker": ctx.worker_id})
    return {"slept_ms": input.get("ms", 100)}


def burn(input, ctx):
    """Keeps the CPU busy in pure Python for input["seconds"]: no sleep, no I/O."""
    record({"event": "start", "task": ctx.task_id, "attempt": ctx.attempt})
    deadline = time.monotonic() + input["seconds"]
    loops = 0
    x = 0
    while time.monotonic() < deadline:
        for i in range(10_000):
            x = (x * 31 + i) % 1_000_003
        loops += 1
    record({"event": "end", "task": ctx.task_id, "attempt": ctx.attempt, "canceled": ctx.canceled})
    return {"loops": loops, "canceled": ctx.canceled}


def steps(input, ctx):
    """Reports progress input["steps"] times, input["gap_ms"] apart."""
    n = input.get("steps", 5)
    for i in range(1, n + 1):
        time.sleep(input.get("gap_ms", 300) / 1000)
        ctx.progress(100 * i / (n + 1), f"step {i} of {n}")
    return {"steps": n}


def until_canceled(input, ctx):
    """Waits for the server's cancel (up to input["max_s"]), then returns anyway."""
    record({"event": "start", "task": ctx.task_id, "attempt": ctx.attempt})
    seen = ctx.cancel_event.wait(input.get("max_s", 30))
    record({"event": "stopped", "task": ctx.task_id, "canceled": seen, "reason": ctx.stop_reason})
    return {"finished": True}


def flaky(input, ctx):
    """Raises on the first input["fail_times"] attempts; PermanentError when input["permanent"]."""
    from edgetask_worker import PermanentError

    record({"event": "run", "task": ctx.task_id, "attempt": ctx.attempt})
    if input.get("permanent"):
        raise PermanentError("the input cannot be processed", "bad_input")
    if ctx.attempt <= input.get("fail_times", 0):
        raise RuntimeError(f"flaky failure on attempt {ctx.attempt}")
    return {"attempt": ctx.attempt}
