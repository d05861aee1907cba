"""Errors of the worker API, and the one a task function raises to fail without a retry."""

from __future__ import annotations

from typing import Any, Optional


class PermanentError(Exception):
    """Raised by a task function for a failure no retry can fix: the attempt fails and the
    task ends ``failed`` at once. Any other exception fails the attempt and the server leases
    the task again while it has attempts left."""

    def __init__(self, message: str, code: str = "processor_error") -> None:
        super().__init__(message)
        self.code = code


class NetworkError(Exception):
    """The server could not be reached or its answer was cut off. Always worth retrying."""


class ApiError(Exception):
    """The server answered with an error status and the edgetask JSON error envelope."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        retry_after: Optional[float] = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        """Overload and server trouble pass; anything else is this client's own mistake."""
        return self.status in (408, 429) or self.status >= 500


class LeaseLost(ApiError):
    """409 ``lease_lost``: the token is no longer the task's current lease (it expired and the
    task went to another worker, the task was canceled, or it already ended). Whatever this
    worker sends for that task now changes nothing."""
