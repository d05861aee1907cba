"""The pull loop: lease a task, run its function, heartbeat meanwhile, report the outcome."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

from .api import Lease, WorkApi
from .backoff import Backoff
from .context import TaskContext
from .errors import ApiError, LeaseLost, NetworkError, PermanentError

TaskFunction = Callable[[Any, TaskContext], Any]

#: Longest ``wait_s`` the server accepts: a held request stays under proxy and NAT idle limits.
MAX_WAIT_S = 25.0
#: Progress brings the next heartbeat forward, but not closer than this to the previous one.
MIN_PROGRESS_GAP_S = 0.25
#: How long a finished attempt keeps trying to report its outcome through network trouble.
REPORT_GIVE_UP_S = 600.0
#: Longest error message sent to the server.
MAX_ERROR_MESSAGE = 1000

log = logging.getLogger("edgetask_worker")


class Worker:
    """Leases tasks of the types it has functions for, runs them, and reports their outcome.

    >>> worker = Worker("http://127.0.0.1:8787", api_key=None, concurrency=2)
    >>> @worker.task("resize")
    ... def resize(input, ctx):
    ...     ctx.progress(50, "half way")
    ...     return {"width": input["width"] // 2}
    >>> worker.run()  # doctest: +SKIP

    ``run()`` blocks until SIGTERM or SIGINT (or :meth:`stop`): then the worker stops leasing,
    lets the lease requests already held by the server end (at most ``wait_s``) and runs what
    they bring, finishes every running task, reports, and returns. A second signal exits at once.
    """

    def __init__(
        self,
        url: str,
        api_key: Optional[str] = None,
        concurrency: int = 1,
        *,
        worker_id: Optional[str] = None,
        wait_s: float = 20.0,
    ) -> None:
        if not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be a positive integer, got {concurrency!r}")
        if not 0 <= wait_s <= MAX_WAIT_S:
            raise ValueError(f"wait_s must be between 0 and {MAX_WAIT_S:g}, got {wait_s!r}")
        self.url = url
        self.concurrency = concurrency
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self.wait_s = float(wait_s)
        self.api = WorkApi(url, api_key)
        self._handlers: Dict[str, TaskFunction] = {}
        self._stop = threading.Event()
        self._fatal: Optional[BaseException] = None
        self._lock = threading.Lock()
        self._running = 0
        #: Outcomes so far: tasks reported succeeded / failed, and results the server refused.
        self.stats = {"succeeded": 0, "failed": 0, "dropped": 0}

    # ---- configuration ----

    def task(self, type: str) -> Callable[[TaskFunction], TaskFunction]:
        """Registers ``fn(input, ctx) -> output`` for task type ``type`` (a decorator)."""
        if not isinstance(type, str) or not type:
            raise ValueError("a task type is a non-empty string")

        def register(fn: TaskFunction) -> TaskFunction:
            if not callable(fn):
                raise TypeError(f"task {type!r}: {fn!r} is not callable")
            self._handlers[type] = fn
            return fn

        return register

    @property
    def types(self) -> List[str]:
        return sorted(self._handlers)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # ---- running ----

    def run(self) -> None:
        """Runs until stopped (see the class doc). Raises what made the worker give up: an API
        key the server refuses, or a type it does not know; never a network error."""
        if not self._handlers:
            raise ValueError("register at least one task function with @worker.task(type) first")
        restore = self._install_signal_handlers()
        slots = [
            threading.Thread(target=self._slot, name=f"edgetask-slot-{i + 1}", daemon=True)
            for i in range(self.concurrency)
        ]
        log.info(
            "worker %s: leasing %s from %s, %d at a time",
            self.worker_id,
            ", ".join(self.types),
            self.url,
            self.concurrency,
        )
        for thread in slots:
            thread.start()
        try:
            # Joined with a timeout so the main thread stays free to take signals.
            while any(thread.is_alive() for thread in slots):
                for thread in slots:
                    thread.join(0.2)
        finally:
            restore()
        if self._fatal is not None:
            raise self._fatal
        log.info("worker %s: stopped (%s)", self.worker_id, self.stats)

    def stop(self) -> None:
        """Stops leasing; running tasks finish and report, then :meth:`run` returns."""
        if not self._stop.is_set():
            self._stop.set()
            log.info(
                "worker %s: draining: %d task(s) running; no new leases (lease requests held by the "
                "server end within %g s)",
                self.worker_id,
                self._running,
                self.wait_s,
            )

    def _install_signal_handlers(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

        def on_signal(signum: int, _frame: Any) -> None:
            if self._stop.is_set():
                log.warning("worker %s: second %s: exiting now", self.worker_id, signal.Signals(signum).name)
                raise SystemExit(128 + signum)
            self.stop()

        for sig in previous:
            signal.signal(sig, on_signal)

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore

    def _give_up(self, error: BaseException) -> None:
        with self._lock:
            if self._fatal is None:
                self._fatal = error
        log.error("worker %s: giving up: %s", self.worker_id, error)
        self.stop()

    def _slot(self) -> None:
        """One lease at a time: long-poll, run, report, again, until stopped."""
        backoff = Backoff()
        try:
            while not self._stop.is_set():
                try:
                    lease = self.api.lease(self.types, self.worker_id, self.wait_s)
                except NetworkError as e:
                    if self._stop.is_set():
                        break
                    delay = backoff.next_delay()
                    log.warning("lease failed (%s); retried after %.1f s", e, delay)
                    self._stop.wait(delay)
                    continue
                except ApiError as e:
                    if not e.retryable:
                        self._give_up(e)
                        return
                    if self._stop.is_set():
                        break
                    delay = backoff.next_delay(e.retry_after)
                    log.warning("lease refused (%s); retried after %.1f s", e, delay)
                    self._stop.wait(delay)
                    continue
                backoff.reset()
                if lease is not None:
                    self._run(lease)
        finally:
            self.api.close()

    def _run(self, lease: Lease) -> None:
        fn = self._handlers.get(lease.type)
        heartbeat = _Heartbeat(self.api, lease)
        ctx = TaskContext(lease.task_id, lease.type, lease.attempt, lease.priority, self.worker_id, heartbeat.poke)
        heartbeat.ctx = ctx
        with self._lock:
            self._running += 1
        started = time.monotonic()
        heartbeat.start()
        try:
            outcome = self._call(fn, lease, ctx)
            seconds = time.monotonic() - started
            heartbeat.flush()
            if ctx.canceled:
                self._count("dropped")
                log.info(
                    "task %s attempt %d: %s after %.2f s; its result is dropped",
                    lease.task_id,
                    lease.attempt,
                    "canceled" if ctx.stop_reason == "canceled" else "lease lost",
                    seconds,
                )
                return
            self._report(lease, ctx, outcome, seconds)
        finally:
            heartbeat.finish()
            with self._lock:
                self._running -= 1

    @staticmethod
    def _call(fn: Optional[TaskFunction], lease: Lease, ctx: TaskContext) -> "_Outcome":
        """Runs the task function and turns what it did into the outcome to report."""
        if fn is None:
            return _Outcome.failure("unsupported_type", f"this worker has no function for {lease.type!r}", True)
        try:
            output = fn(lease.input, ctx)
        except PermanentError as e:
            return _Outcome.failure(e.code, _message(e), False)
        except BaseException as e:  # a task function must never take the worker down
            log.exception("task %s attempt %d: %s", lease.task_id, lease.attempt, type(e).__name__)
            return _Outcome.failure("processor_error", _message(e), True)
        try:
            return _Outcome(output_json=json.dumps(output, allow_nan=False, separators=(",", ":")))
        except (TypeError, ValueError) as e:
            return _Outcome.failure("invalid_output", f"the task function returned something that is not JSON: {e}", False)

    def _report(self, lease: Lease, ctx: TaskContext, outcome: "_Outcome", seconds: float) -> None:
        """Sends the outcome, retrying through network trouble; the heartbeat keeps the lease."""
        backoff = Backoff(0.5, 10.0)
        never = threading.Event()
        give_up_at = time.monotonic() + REPORT_GIVE_UP_S
        while True:
            if ctx.canceled:
                self._count("dropped")
                log.warning("task %s attempt %d: the lease ended before the result got through", lease.task_id, lease.attempt)
                return
            try:
                if outcome.output_json is not None:
                    self.api.complete(lease.task_id, lease.token, outcome.output_json)
                    self._count("succeeded")
                    log.info("task %s attempt %d: succeeded in %.2f s", lease.task_id, lease.attempt, seconds)
                else:
                    self.api.fail(lease.task_id, lease.token, outcome.code, outcome.message, outcome.retryable)
                    self._count("failed")
                    log.info(
                        "task %s attempt %d: failed in %.2f s: %s: %s",
                        lease.task_id,
                        lease.attempt,
                        seconds,
                        outcome.code,
                        outcome.message,
                    )
                return
            except ApiError as e:
                if isinstance(e, LeaseLost) or e.status == 409:
                    self._count("dropped")
                    log.warning(
                        "task %s attempt %d: result refused (%s): the lease had lapsed, and the task may have "
                        "gone to another worker",
                        lease.task_id,
                        lease.attempt,
                        e.code,
                    )
                    return
                if e.retryable:
                    backoff.sleep(never, e.retry_after)
                elif outcome.output_json is not None:
                    # The server refused this output (too large, or not acceptable): fail the task
                    # rather than leave it to a lease expiry and a pointless retry.
                    code = "output_too_large" if e.status == 413 else "output_rejected"
                    outcome = _Outcome.failure(code, f"the server refused the output: {e.message}", False)
                    continue
                else:
                    log.error("task %s attempt %d: the server refused the failure report: %s", lease.task_id, lease.attempt, e)
                    return
            except NetworkError as e:
                delay = backoff.sleep(never)
                log.warning("task %s: reporting failed (%s); retried after %.1f s", lease.task_id, e, delay)
            if time.monotonic() > give_up_at:
                log.error("task %s attempt %d: could not report for %g s; giving up", lease.task_id, lease.attempt, REPORT_GIVE_UP_S)
                return

    def _count(self, outcome: str) -> None:
        with self._lock:
            self.stats[outcome] += 1


@dataclass
class _Outcome:
    """What an attempt did: an output (as JSON text), or an error and whether to retry it."""

    output_json: Optional[str] = None
    code: str = ""
    message: str = ""
    retryable: bool = False

    @staticmethod
    def failure(code: str, message: str, retryable: bool) -> "_Outcome":
        return _Outcome(code=code, message=message, retryable=retryable)


class _Heartbeat(threading.Thread):
    """Extends one lease every ``heartbeat_s`` and carries its progress, on a thread of its own
    so heartbeats keep flowing while the task function keeps the CPU busy."""

    def __init__(self, api: WorkApi, lease: Lease) -> None:
        super().__init__(name=f"edgetask-heartbeat-{lease.task_id}", daemon=True)
        self.api = api
        self.lease = lease
        self.ctx: Optional[TaskContext] = None
        self.interval = max(0.1, lease.heartbeat_s)
        self._cond = threading.Condition()
        self._done = False
        self._poked = False
        #: The function returned: progress left is sent at once, and the report call decides.
        self._reporting = False
        self._sending = False

    def poke(self) -> None:
        """New progress: send it soon rather than at the next regular heartbeat."""
        with self._cond:
            self._poked = True
            self._cond.notify()

    def flush(self, timeout: float = 2.0) -> None:
        """The function returned: sends the progress it left before the outcome is reported, so
        its last progress is not overtaken by the end of the task."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._reporting = True
            self._cond.notify_all()
            while self.ctx is not None and (self.ctx.has_progress() or self._sending) and self.is_alive():
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._cond.wait(left)

    def finish(self) -> None:
        with self._cond:
            self._done = True
            self._cond.notify()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(5.0)

    def run(self) -> None:
        ctx = self.ctx
        if ctx is None:
            return
        backoff = Backoff(0.5, self.interval)
        last_sent = time.monotonic()
        due = last_sent + self.interval
        try:
            while True:
                with self._cond:
                    while True:
                        if self._done:
                            return
                        now = time.monotonic()
                        if now >= due or (self._poked and now - last_sent >= MIN_PROGRESS_GAP_S):
                            break
                        if self._reporting and ctx.has_progress():
                            break
                        timeout = due - now
                        if self._poked:
                            timeout = min(timeout, MIN_PROGRESS_GAP_S - (now - last_sent))
                        self._cond.wait(timeout)
                    self._poked = False
                    self._sending = True
                late = now - due
                if late > self.interval:
                    # Only a thread that could not run for that long explains this: code holding the GIL.
                    log.warning(
                        "task %s: heartbeat %.1f s late: the task function held the GIL; raise the type's lease_s",
                        self.lease.task_id,
                        late,
                    )
                progress = ctx.take_progress()
                try:
                    # A stuck call must not outlive the lease: give up on it in time to try again.
                    answer = self.api.heartbeat(
                        self.lease.task_id, self.lease.token, progress, timeout_s=max(2.0, min(10.0, self.interval))
                    )
                except (NetworkError, ApiError) as e:
                    self._sent()
                    if progress is not None:
                        ctx.restore_progress(progress)
                    if isinstance(e, NetworkError) or e.retryable:
                        delay = backoff.next_delay(getattr(e, "retry_after", None))
                        due = time.monotonic() + min(delay, self.interval)
                        log.warning("task %s: heartbeat failed (%s); next in %.1f s", self.lease.task_id, e, due - time.monotonic())
                        continue
                    with self._cond:
                        if self._done or self._reporting:
                            # The outcome's own call got there first (or will learn the same).
                            return
                    ctx.stop("lease_lost")
                    log.warning(
                        "task %s attempt %d: lease lost (%s): stop; whatever this attempt returns is refused",
                        self.lease.task_id,
                        self.lease.attempt,
                        e.code,
                    )
                    return
                self._sent()
                backoff.reset()
                last_sent = time.monotonic()
                due = last_sent + self.interval
                if answer.cancel_requested:
                    ctx.stop("canceled")
                    log.info("task %s attempt %d: canceled by the server", self.lease.task_id, self.lease.attempt)
                    return
        finally:
            self._sent()
            self.api.close()

    def _sent(self) -> None:
        with self._cond:
            self._sending = False
            self._cond.notify_all()


def _message(e: BaseException) -> str:
    text = str(e)
    message = f"{type(e).__name__}: {text}" if text and not isinstance(e, PermanentError) else (text or type(e).__name__)
    return message[:MAX_ERROR_MESSAGE]
