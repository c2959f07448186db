"""Middleware: a chain of async callables around every handler call.

A middleware is ``async def mw(task, call_next) -> result``: it may run code before and after
``await call_next(task)``, change or replace the result, or raise. The first middleware
registered is the outermost, so logging registered first sees everything the others do.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from leasq_worker.task import Task

CallNext = Callable[[Task], Awaitable[Any]]
Middleware = Callable[[Task, CallNext], Awaitable[Any]]


def build_chain(middlewares: Sequence[Middleware], terminal: CallNext) -> CallNext:
    """Compose ``middlewares`` around ``terminal`` once, so a call costs no list walking."""
    call: CallNext = terminal
    for middleware in reversed(middlewares):
        call = _link(middleware, call)
    return call


def _link(middleware: Middleware, call_next: CallNext) -> CallNext:
    async def call(task: Task) -> Any:
        return await middleware(task, call_next)

    return call
