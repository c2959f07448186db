"""A small process pool whose jobs can be killed one by one.

``concurrent.futures.ProcessPoolExecutor`` cannot stop a single running job, so a timed-out
CPU-bound handler would hold its process forever. Here each child runs one job at a time over
its own pipe; cancelling a job (timeout, lost lease, shutdown) kills that child and the next job
starts a fresh one. Children are spawned (not forked) so they never inherit the event loop or
gRPC threads of the worker.
"""

from __future__ import annotations

import asyncio
import inspect
import multiprocessing
import pickle
import signal
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from leasq_worker.errors import RemoteHandlerError


class ProcessPool:
    """Runs ``func(task)`` in up to ``size`` child processes, started on first use."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a process pool needs at least one process")
        self._context = multiprocessing.get_context("spawn")
        self._slots = asyncio.Semaphore(size)
        self._idle: list[_Child] = []
        self._busy: set[_Child] = set()

    async def run(self, func: Callable[..., Any], task: Any) -> Any:
        """Run one job; re-raises the job's exception; kills the child if cancelled."""
        async with self._slots:
            child = self._idle.pop() if self._idle else _Child(self._context)
            self._busy.add(child)
            reusable = False
            try:
                ok, value = await child.call(func, task)
                reusable = True
            finally:
                self._busy.discard(child)
                if reusable:
                    self._idle.append(child)
                else:
                    child.kill()
        if ok:
            return value
        raise value

    def close(self) -> None:
        """Kill every child, busy or idle."""
        for child in [*self._idle, *self._busy]:
            child.kill()
        self._idle.clear()
        self._busy.clear()


class _Child:
    """One spawned process and the parent's end of its pipe."""

    def __init__(self, context: Any) -> None:
        parent_end, child_end = context.Pipe()
        self.process: BaseProcess = context.Process(
            target=_child_main, args=(child_end,), daemon=True, name="leasq-handler"
        )
        self.process.start()
        child_end.close()
        self.conn: Connection = parent_end

    async def call(self, func: Callable[..., Any], task: Any) -> tuple[bool, Any]:
        """Send one job and wait, without blocking the loop, for its (ok, value) reply."""
        self.conn.send((func, task))
        await _readable(self.conn.fileno())
        try:
            reply: tuple[bool, Any] = self.conn.recv()
        except EOFError:
            self.process.join(1)
            code = self.process.exitcode
            raise RemoteHandlerError(
                "ProcessDied", f"handler process exited with code {code}"
            ) from None
        return reply

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()


def _readable(fd: int) -> Awaitable[None]:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        loop.remove_reader(fd)
        if not future.done():
            future.set_result(None)

    def forget(_: asyncio.Future[None]) -> None:
        loop.remove_reader(fd)

    loop.add_reader(fd, ready)
    future.add_done_callback(forget)
    return future


def _child_main(conn: Connection) -> None:
    """Child loop: receive (func, task), run it, send (ok, result-or-exception)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when a job stops
    while True:
        try:
            func, task = conn.recv()
        except EOFError:
            return
        except Exception as exc:  # the function or task did not unpickle here
            conn.send((False, _portable(exc)))
            continue
        conn.send(_run(func, task))


def _run(func: Callable[..., Any], task: Any) -> tuple[bool, Any]:
    try:
        result = func(task)
        if inspect.isawaitable(result):
            result = asyncio.run(_wait(result))
        pickle.dumps(result)
        return True, result
    except BaseException as exc:
        return False, _portable(exc)


async def _wait(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _portable(exc: BaseException) -> BaseException:
    """The exception itself if it survives pickling, else its class name and text."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RemoteHandlerError(type(exc).__name__, str(exc))
