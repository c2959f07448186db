"""What every system's no-op handlers do, so that each pays the same per-task cost.

A benchmark handler makes exactly one Redis round trip on the shared private Redis: ``noop``
INCRs a counter (the runner's stop condition, and the check that every task ran exactly once),
``probe`` pushes its enqueue -> start delay, ``crash`` pushes its start and then hangs until the
runner kills its worker. Sync workers (threads, prefork children) and asyncio workers get the
same calls through redis-py's sync and asyncio clients.

Settings come from the environment because each system imports its handler module in its own
worker process: ``BENCH_REDIS_URL`` (the database of the system under test) and ``BENCH_N``
(how many no-op tasks make a complete drain).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time

import redis
import redis.asyncio

COUNT = "bench:count"
FIRST = "bench:first"
LAST = "bench:last"
PROBES = "bench:probes"
CRASHES = "bench:crashes"
HANG_S = 3600.0


def redis_url() -> str:
    return os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6399/1")


def _expected() -> int:
    return int(os.environ.get("BENCH_N", "0"))


class SyncRecorder:
    """Handler side for thread and process workers; one client per process (safe after fork)."""

    def __init__(self) -> None:
        self._client: redis.Redis | None = None
        self._pid = 0
        self._lock = threading.Lock()
        self._expected = _expected()

    def _redis(self) -> redis.Redis:
        if self._client is None or self._pid != os.getpid():
            with self._lock:
                if self._client is None or self._pid != os.getpid():
                    self._client = redis.Redis.from_url(redis_url())
                    self._pid = os.getpid()
        return self._client

    def noop(self) -> None:
        started = time.time()
        done = int(self._redis().incr(COUNT))
        if done == 1:
            self._redis().set(FIRST, repr(started))
        if done == self._expected:
            self._redis().set(LAST, repr(time.time()))

    def probe(self, sent: float) -> None:
        delay = time.time() - sent
        self._redis().rpush(PROBES, f"{delay!r} {os.getpid()}")

    def crash(self) -> None:
        self._redis().rpush(CRASHES, f"{time.time()!r} {os.getpid()}")
        time.sleep(HANG_S)


class AsyncRecorder:
    """Handler side for asyncio workers; the client is made inside the worker's event loop."""

    def __init__(self) -> None:
        self._client: redis.asyncio.Redis | None = None
        self._expected = _expected()

    def _redis(self) -> redis.asyncio.Redis:
        if self._client is None:
            self._client = redis.asyncio.Redis.from_url(redis_url())
        return self._client

    async def noop(self) -> None:
        started = time.time()
        done = int(await self._redis().incr(COUNT))
        if done == 1:
            await self._redis().set(FIRST, repr(started))
        if done == self._expected:
            await self._redis().set(LAST, repr(time.time()))

    async def probe(self, sent: float) -> None:
        delay = time.time() - sent
        await self._redis().rpush(PROBES, f"{delay!r} {os.getpid()}")

    async def crash(self) -> None:
        await self._redis().rpush(CRASHES, f"{time.time()!r} {os.getpid()}")
        await asyncio.sleep(HANG_S)
