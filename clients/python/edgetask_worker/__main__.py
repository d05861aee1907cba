"""``python -m edgetask_worker --url URL --type T (--seed module:process_task | --task module:fn)``"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import List, Optional

from . import __version__
from .errors import ApiError
from .seed import load_function, seed_task
from .worker import MAX_WAIT_S, Worker


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m edgetask_worker",
        description="Lease tasks of one type from an edgetask server and run them with a Python function.",
    )
    parser.add_argument("--url", default=os.environ.get("EDGETASK_URL"), help="server URL (or EDGETASK_URL)")
    parser.add_argument(
        "--key",
        default=os.environ.get("EDGETASK_API_KEY"),
        help="API key (or EDGETASK_API_KEY); needed only when the server has keys",
    )
    parser.add_argument("--type", required=True, help="the task type to lease (a key of the server's WORKER_TYPES)")
    how = parser.add_mutually_exclusive_group(required=True)
    how.add_argument(
        "--seed",
        metavar="MODULE:FUNCTION",
        help="a seed-template process_task(data) -> (success, message, result), used as is",
    )
    how.add_argument("--task", metavar="MODULE:FUNCTION", help="a task function fn(input, ctx) -> output")
    parser.add_argument("--concurrency", type=int, default=1, help="tasks run at once (default 1)")
    parser.add_argument("--worker-id", help="name shown in the server's logs (default host-pid)")
    parser.add_argument(
        "--wait",
        type=float,
        default=20.0,
        help=f"seconds a lease request waits for work, 0-{MAX_WAIT_S:g} (default 20); also bounds a drain",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--version", action="version", version=f"edgetask-worker {__version__}")
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("--url (or EDGETASK_URL) is required")
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    log = logging.getLogger("edgetask_worker")
    try:
        fn = load_function(args.seed or args.task)
        worker = Worker(args.url, args.key, args.concurrency, worker_id=args.worker_id, wait_s=args.wait)
    except Exception as e:  # a bad flag or an import error: say which, no traceback wall
        log.error("cannot start: %s: %s", type(e).__name__, e)
        return 2
    worker.task(args.type)(seed_task(fn) if args.seed else fn)
    try:
        worker.run()
    except ApiError as e:
        log.error("stopped: the server refused this worker: %s", e)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
