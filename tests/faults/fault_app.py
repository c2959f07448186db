"""The handler of the fault scenarios' workers: work a little, then record the run.

Environment: ``FAULT_LEDGER_URL`` (a Redis no fault touches), ``FAULT_LEDGER_KEY`` (the list
each finished run appends its task id to), ``FAULT_WORK_SECONDS`` (how long a run works, so
that some tasks are always in flight when a fault strikes).
"""

from __future__ import annotations

import os
import time
from functools import cache

import redis

from leasq_worker import Registry, Task

registry = Registry()


@cache
def _ledger() -> redis.Redis:
    return redis.Redis.from_url(os.environ["FAULT_LEDGER_URL"])


@registry.handler("fault:job")
def job(task: Task) -> None:
    """Runs in the worker's thread pool; its task id is in the ledger once it has finished."""
    time.sleep(float(os.environ.get("FAULT_WORK_SECONDS", "0.05")))
    _ledger().rpush(os.environ["FAULT_LEDGER_KEY"], task.id)
