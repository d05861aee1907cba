"""edgetask pull worker: lease tasks from an edgetask server, run them here, report back.

For GPU machines behind NAT with no public port: the worker only makes outbound HTTPS calls.
Standard library only, Python >= 3.9.

Delivery is at least once: an attempt whose lease lapsed (a network cut longer than the lease,
a machine that froze) is refused and the task runs again, possibly elsewhere. Side effects
should use the task id (``ctx.task_id``) as an idempotency key.
"""

from .api import Lease, WorkApi
from .context import TaskContext
from .errors import ApiError, LeaseLost, NetworkError, PermanentError
from .seed import load_function, seed_task
from .worker import Worker

__version__ = "0.1.0"

__all__ = [
    "ApiError",
    "Lease",
    "LeaseLost",
    "NetworkError",
    "PermanentError",
    "TaskContext",
    "WorkApi",
    "Worker",
    "load_function",
    "seed_task",
]
