"""Handlers by task type, plus the middleware and error hooks that apply to all of them.

Lookup is an exact match on the type, then the longest registered name that is a prefix of it
(``"email:"`` handles ``"email:welcome"`` when nothing more specific is registered), as in
Asynq's ServeMux. Results are cached per type, so a lookup on the hot path is one dict read.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol, TypeVar

from leasq_worker.middleware import Middleware
from leasq_worker.task import Decoder, Task

HandlerFunc = Callable[[Task], Any]
ErrorHook = Callable[[Task, BaseException], "Awaitable[None] | None"]
F = TypeVar("F", bound=Callable[..., Any])
_CACHE_LIMIT = 10_000


class TaskDefinition(Protocol):
    """What the registry needs from a task definition (e.g. ``leasq_sdk.TaskDef``)."""

    @property
    def name(self) -> str: ...

    def decode(self, payload: bytes) -> Any: ...


class Mode(Enum):
    """Where a handler runs."""

    ASYNC = "async"  # on the event loop
    THREAD = "thread"  # in the worker's thread pool
    PROCESS = "process"  # in the worker's process pool (killable on timeout)


@dataclass(frozen=True, slots=True)
class Handler:
    """A registered handler: the function, where it runs, and how its payload decodes."""

    name: str
    func: HandlerFunc
    mode: Mode
    decoder: Decoder | None = None


class Registry:
    """Maps task types to handlers; built at import time of the user's task module."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}
        self._cache: dict[str, Handler | None] = {}
        self.middlewares: list[Middleware] = []
        self.error_hooks: list[ErrorHook] = []

    def handler(
        self, task_type: str | TaskDefinition, *, process: bool = False
    ) -> Callable[[F], F]:
        """Register the decorated function for ``task_type`` (a name or a task definition).

        ``async def`` functions run on the event loop, plain functions in a thread pool;
        ``process=True`` runs the function in a process pool instead (for CPU-heavy work: it
        must be a module-level function, and its task and result must pickle). The function
        is returned unchanged.
        """

        def register(func: F) -> F:
            self.add(task_type, func, process=process)
            return func

        return register

    def add(
        self, task_type: str | TaskDefinition, func: HandlerFunc, *, process: bool = False
    ) -> None:
        """Register ``func`` without decorator syntax; see :meth:`handler`."""
        if isinstance(task_type, str):
            name, decoder = task_type, None
        else:
            name, decoder = task_type.name, task_type.decode
        if not name:
            raise ValueError("a handler needs a non-empty task type")
        if name in self._handlers:
            raise ValueError(f"a handler for task type {name!r} is already registered")
        if process:
            mode = Mode.PROCESS
        elif inspect.iscoroutinefunction(func):
            mode = Mode.ASYNC
        else:
            mode = Mode.THREAD
        self._handlers[name] = Handler(name, func, mode, decoder)
        self._cache.clear()

    def middleware(self, func: Middleware) -> Middleware:
        """Add a middleware (usable as a decorator); the first added is the outermost."""
        self.middlewares.append(func)
        return func

    def on_error(self, func: ErrorHook) -> ErrorHook:
        """Add an error hook (usable as a decorator), called with every failed attempt."""
        self.error_hooks.append(func)
        return func

    def lookup(self, task_type: str) -> Handler | None:
        """The handler for ``task_type``: exact match, then longest prefix, else None."""
        try:
            return self._cache[task_type]
        except KeyError:
            found = self._find(task_type)
            if len(self._cache) >= _CACHE_LIMIT:  # producers may invent unbounded types
                self._cache.clear()
            self._cache[task_type] = found
            return found

    def _find(self, task_type: str) -> Handler | None:
        exact = self._handlers.get(task_type)
        if exact is not None:
            return exact
        prefixes = [name for name in self._handlers if task_type.startswith(name)]
        return self._handlers[max(prefixes, key=len)] if prefixes else None

    @property
    def handlers(self) -> dict[str, Handler]:
        """Registered handlers by name (a copy)."""
        return dict(self._handlers)

    @property
    def uses_processes(self) -> bool:
        """True when any handler runs in the process pool."""
        return any(h.mode is Mode.PROCESS for h in self._handlers.values())
