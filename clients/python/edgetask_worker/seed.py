"""Runs the seed template's business-logic hook, ``process_task(data) -> (success, message,
result)``, as a task function, unchanged: a seed-template user moves their model code over
without touching it."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from typing import Any, Callable

from .context import TaskContext
from .errors import PermanentError

SeedFunction = Callable[[Any], Any]


def seed_task(process_task: SeedFunction) -> Callable[[Any, TaskContext], Any]:
    """Wraps ``process_task`` as ``fn(input, ctx)``.

    The input is handed over as the seed's ``task_data`` (with ``uuid`` set to the task id when
    it has none, as the seed always gave one). ``(True, message, result)`` makes ``result`` the
    task's output, so ``POST /process`` answers ``{"success": true, …, "data": {"uuid", "result"}}``;
    ``(False, message, _)`` fails the task with ``message`` and no retry (the seed's own
    failure); an exception fails the attempt, and the task is leased again while it has attempts.
    """

    def run(input: Any, ctx: TaskContext) -> Any:
        data = dict(input) if isinstance(input, dict) else input
        if isinstance(data, dict):
            data.setdefault("uuid", ctx.task_id)
        answer = process_task(data)
        if not isinstance(answer, (tuple, list)) or len(answer) != 3:
            raise PermanentError(
                f"process_task must return (success, message, result), got {type(answer).__name__}",
                "invalid_output",
            )
        success, message, result = answer
        if not success:
            raise PermanentError(str(message) if message else "process_task reported failure", "process_failed")
        return result

    run.__name__ = getattr(process_task, "__name__", "process_task")
    run.__doc__ = getattr(process_task, "__doc__", None)
    return run


def load_function(spec: str) -> Callable[..., Any]:
    """``module:function`` (a dotted module importable from the current directory) or
    ``path/to/file.py:function``."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"expected module:function or file.py:function, got {spec!r}")
    if module_name.endswith(".py") or os.sep in module_name:
        path = os.path.abspath(module_name)
        name = os.path.splitext(os.path.basename(path))[0]
        loader_spec = importlib.util.spec_from_file_location(name, path)
        if loader_spec is None or loader_spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[name] = module
        # The file's own directory first, so its sibling imports resolve as they do when run there.
        sys.path.insert(0, os.path.dirname(path))
        loader_spec.loader.exec_module(module)
    else:
        if os.getcwd() not in sys.path and "" not in sys.path:
            sys.path.insert(0, os.getcwd())
        module = importlib.import_module(module_name)
    target: Any = module
    for part in attr.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise TypeError(f"{spec} is not callable")
    return target
