"""Exponential backoff with jitter, for retrying a server that cannot be reached."""

from __future__ import annotations

import random
import threading
from typing import Optional


class Backoff:
    """Delays of base, 2·base, 4·base … capped at ``cap`` seconds, each drawn at random from its
    upper half, so a fleet of workers that lost the server does not come back in step and no
    retry comes at once."""

    def __init__(self, base: float = 0.5, cap: float = 30.0) -> None:
        self.base = base
        self.cap = cap
        self.failures = 0

    def next_delay(self, at_least: Optional[float] = None) -> float:
        ceiling = min(self.cap, self.base * (2 ** self.failures))
        self.failures += 1
        delay = random.uniform(ceiling / 2, ceiling)
        if at_least is not None:
            # The server's Retry-After, within reason: a bogus huge value must not park a worker.
            delay = max(delay, min(at_least, self.cap * 4))
        return delay

    def reset(self) -> None:
        self.failures = 0

    def sleep(self, stop: threading.Event, at_least: Optional[float] = None) -> float:
        """Waits the next delay, or less if ``stop`` is set meanwhile. Returns the delay."""
        delay = self.next_delay(at_least)
        stop.wait(delay)
        return delay
