"""A process-pool handler that shows how many pool processes run at once.

``pool:pid`` (payload ``{"key": <redis list>, "together": N}``) pushes its process id to the
list, waits (up to 10 s) until N handlers have pushed theirs, and returns its process id. With a
pool of N processes the first N tasks meet; with fewer they cannot all run at once.
"""

from __future__ import annotations

import os
import time

import redis

from leasq_worker import Registry, Task

registry = Registry()


def pid_together(task: Task) -> int:
    job = task.json()
    client = redis.Redis.from_url(os.environ["WORKER_TEST_REDIS"])
    try:
        client.rpush(job["key"], os.getpid())
        give_up = time.monotonic() + 10
        while client.llen(job["key"]) < job["together"] and time.monotonic() < give_up:
            time.sleep(0.02)
    finally:
        client.close()
    return os.getpid()


registry.add("pool:pid", pid_together, process=True)
