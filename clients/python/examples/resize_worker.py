"""A pull worker for the task type "resize": run it on the GPU machine, next to your model."""

import logging
import os
import time

from edgetask_worker import PermanentError, Worker

worker = Worker(
    os.environ.get("EDGETASK_URL", "http://127.0.0.1:8787"),
    api_key=os.environ.get("EDGETASK_API_KEY"),  # needed only when the server has API keys
    concurrency=1,
)


@worker.task("resize")
def resize(input, ctx):
    if input.get("width", 0) <= 0:
        raise PermanentError("width must be a positive number")  # fails at once, no retry
    for step in range(1, 4):
        if ctx.canceled:  # a caller canceled the task: stop, nothing returned counts
            return None
        ctx.progress(step * 25, f"pass {step} of 3")  # reaches WebSocket/SSE subscribers
        time.sleep(0.2)  # your model here; heartbeats keep flowing on their own thread
    # Delivery is at least once: use ctx.task_id as the idempotency key of any side effect.
    return {"width": input["width"] // 2, "task": ctx.task_id, "attempt": ctx.attempt}


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    worker.run()  # until SIGTERM / Ctrl-C: finishes running tasks, then exits
