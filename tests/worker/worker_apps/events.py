"""Handlers for worker subprocesses; they tell the test what happens through a Redis list.

Environment: ``WORKER_TEST_REDIS`` (URL), ``WORKER_TEST_EVENTS`` (list key), ``WORKER_TEST_NAME``
(this worker's name in events and results), ``WORKER_TEST_MODE`` (``normal``: "job" returns at
once; ``hang``: "job" never returns; ``sleep``: "job" sleeps five seconds first). Each event is
``"<what> <task id> <worker name> <unix time>"``.
"""

from __future__ import annotations

import asyncio
import os
import time
from functools import cache

import redis

from leasq_worker import Registry, Task

registry = Registry()
NAME = os.environ.get("WORKER_TEST_NAME", "worker")
MODE = os.environ.get("WORKER_TEST_MODE", "normal")


@cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(os.environ["WORKER_TEST_REDIS"])


def emit(what: str, task: Task) -> None:
    _redis().rpush(os.environ["WORKER_TEST_EVENTS"], f"{what} {task.id} {NAME} {time.time()}")


@registry.handler("job")
async def job(task: Task) -> str:
    emit("start", task)
    if MODE == "hang":
        await asyncio.Event().wait()
    elif MODE == "sleep":
        await asyncio.sleep(5.0)
    emit("done", task)
    return NAME


@registry.handler("wait:sync")
def wait_for_release(task: Task) -> str:
    """Runs until the test pushes to the ``<events>:release`` list (a sync handler)."""
    emit("start", task)
    _redis().blpop([os.environ["WORKER_TEST_EVENTS"] + ":release"], timeout=30)
    emit("done", task)
    return NAME


@registry.handler("stuck:async")
async def stuck_async(task: Task) -> None:
    emit("start", task)
    await asyncio.Event().wait()


@registry.handler("stuck:sync")
def stuck_sync(task: Task) -> None:
    """Ignores its cancel signal: the worker must still exit on time."""
    emit("start", task)
    time.sleep(60)
