"""What a task function gets besides its input."""

from __future__ import annotations

import math
import threading
from typing import Any, Callable, Dict, Optional


class TaskContext:
    """The running attempt, as the task function sees it.

    ``ctx.progress(percent, message)`` reports progress: it reaches the task's subscribers with
    the next heartbeat, which it brings forward. ``ctx.canceled`` turns true once the server
    answers a heartbeat with ``cancel_requested`` (a caller canceled the task) or refuses the
    lease (it expired and the task went to another worker): stop then, nothing you return
    counts any more. ``ctx.cancel_event`` is the same as a :class:`threading.Event`, to wait on.
    """

    def __init__(
        self,
        task_id: str,
        type: str,
        attempt: int,
        priority: str,
        worker_id: str,
        on_progress: Callable[[], None],
    ) -> None:
        self.task_id = task_id
        self.type = type
        self.attempt = attempt
        self.priority = priority
        self.worker_id = worker_id
        self.cancel_event = threading.Event()
        #: Why the attempt was stopped: "canceled" (by a caller) or "lease_lost"; None while it runs.
        self.stop_reason: Optional[str] = None
        self._on_progress = on_progress
        self._lock = threading.Lock()
        self._progress: Optional[Dict[str, Any]] = None

    @property
    def canceled(self) -> bool:
        """True once the server said to stop (cancel requested, or the lease is gone)."""
        return self.cancel_event.is_set()

    @property
    def lease_lost(self) -> bool:
        return self.stop_reason == "lease_lost"

    def progress(self, percent: float, message: Optional[str] = None) -> None:
        """Reports progress (0–100, clamped) with an optional message (cut at 256 characters)."""
        if isinstance(percent, bool) or not isinstance(percent, (int, float)) or not math.isfinite(percent):
            raise ValueError(f"percent must be a finite number, got {percent!r}")
        value: Dict[str, Any] = {"percent": min(100.0, max(0.0, float(percent)))}
        if message is not None:
            value["message"] = str(message)[:256]
        with self._lock:
            self._progress = value
        self._on_progress()

    def take_progress(self) -> Optional[Dict[str, Any]]:
        """The progress not yet sent, if any (the heartbeat thread takes it)."""
        with self._lock:
            value, self._progress = self._progress, None
        return value

    def has_progress(self) -> bool:
        with self._lock:
            return self._progress is not None

    def restore_progress(self, value: Dict[str, Any]) -> None:
        """Puts back progress whose heartbeat failed, unless newer progress came meanwhile."""
        with self._lock:
            if self._progress is None:
                self._progress = value

    def stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        self.cancel_event.set()
