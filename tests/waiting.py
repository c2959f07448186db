"""Bounded waits for tests: a regression fails in seconds with what was awaited, never at the
global pytest timeout.

- ``await within(5, started.wait(), "the handler never started")``: one awaitable, bounded.
- ``await eventually(check, 10, "the task completed")``: poll an async check until it holds.

Bounds follow from the mechanism under test (a lease, a timeout, a poll interval) plus
:data:`MARGIN`, the time a loaded 2-core machine may add to any step that involves another
process (a gRPC round trip, a Redis script, a scheduler slice). Where no mechanism bounds a
wait, use :data:`SETTLE`: long enough never to flake, short enough to fail fast.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

# What a busy machine may add to a step that crosses processes; part of every upper bound.
MARGIN = 1.0
# A wait that no mechanism bounds (a handler starting, a process answering): generous.
SETTLE = 15.0
POLL_SECONDS = 0.02


async def within(seconds: float, awaitable: Awaitable[T], what: str | Callable[[], str]) -> T:
    """``awaitable``'s result, or an AssertionError saying ``what`` did not happen in time
    (``what`` may be a function, called at the timeout, to describe the state then)."""
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except TimeoutError:
        text = what() if callable(what) else what
        raise AssertionError(f"{text}: not within {seconds:g}s") from None


async def eventually(
    check: Callable[[], Awaitable[T]], seconds: float, what: str, interval: float = POLL_SECONDS
) -> T:
    """Call ``check`` until it returns a true value (that value), for at most ``seconds``;
    then fail saying ``what`` did not happen and what ``check`` returned last."""
    deadline = time.monotonic() + seconds
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds:g}s (last check: {value!r})")
        await asyncio.sleep(interval)
