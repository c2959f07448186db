"""One attempt of one task: run the handler chain, and map how it ended to an outcome.

Returns the :class:`Outcome` to report, or None when nothing may be reported (the lease is
gone). Every failure is shown to the error hooks; per-task logs are at debug level because they
sit on the hot path.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from typing import Any

from leasq_worker.errors import DeadlineExceeded, TaskCanceled, TaskTimeout, UnknownTaskType
from leasq_worker.executor import Executor, encode_result
from leasq_worker.leases import CANCELED, SHUTDOWN, TIMEOUT, HeldLease
from leasq_worker.outcome import REQUEUED, Outcome, ack, failure
from leasq_worker.registry import Handler, Registry
from leasq_worker.task import Task


class AttemptRunner:
    """Runs attempts for one worker."""

    def __init__(self, registry: Registry, executor: Executor, log: Any) -> None:
        self._hooks = registry.error_hooks
        self._executor = executor
        self._log = log
        is_enabled_for = getattr(log, "is_enabled_for", None)
        self._debug = is_enabled_for(logging.DEBUG) if is_enabled_for is not None else True

    async def run(self, held: HeldLease, handler: Handler | None) -> Outcome | None:
        """Run ``held``'s task with ``handler`` and say what to report."""
        task = held.task
        started = time.perf_counter()
        try:
            if handler is None:
                raise UnknownTaskType(f"no handler registered for task type {task.type!r}")
            value = await self._executor.chain(handler)(task)
            if held.stop_reason is not None:  # the handler swallowed its cancellation
                raise asyncio.CancelledError
            outcome: Outcome | None = ack(encode_result(value))
        except asyncio.CancelledError:
            if held.stop_reason is None:
                raise  # the worker itself is being torn down
            outcome = await self._stopped(held)
        except (Exception, SystemExit) as exc:  # sys.exit() in a handler is a failure too
            outcome = failure(exc)
            await self._report(task, exc)
        self._logged(task, outcome, time.perf_counter() - started)
        return outcome

    async def _stopped(self, held: HeldLease) -> Outcome | None:
        """What to report for an attempt the runtime stopped (see ``HeldLease.stop``)."""
        if held.stop_reason == SHUTDOWN:
            return REQUEUED
        if held.stop_reason == TIMEOUT:
            exc: Exception = _timeout_error(held.task)
        elif held.stop_reason == CANCELED:
            exc = TaskCanceled("canceled")
        else:
            return None  # the lease is gone: another worker may have the task
        await self._report(held.task, exc)
        return failure(exc)

    async def _report(self, task: Task, exc: BaseException) -> None:
        for hook in self._hooks:
            try:
                result = hook(task, exc)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                self._log.exception("error hook failed", task_id=task.id, type=task.type)

    def _logged(self, task: Task, outcome: Outcome | None, seconds: float) -> None:
        if outcome is not None and outcome.ack and not self._debug:
            return  # the hot path: no fields built for a log line nobody reads
        fields = {
            "task_id": task.id,
            "type": task.type,
            "queue": task.queue,
            "attempt": task.attempt,
            "duration_ms": round(seconds * 1000, 3),
        }
        if outcome is None:
            self._log.info("outcome not reported", reason=task.cancel_reason, **fields)
        elif outcome.ack:
            self._log.debug("task succeeded", **fields)
        else:
            self._log.warning(
                "task failed", error=outcome.error, error_type=outcome.error_type, **fields
            )


def _timeout_error(task: Task) -> Exception:
    """DeadlineExceeded when the task's deadline ended the attempt, else TaskTimeout."""
    deadline, ended = task.deadline, task.attempt_deadline
    if deadline is not None and (ended is None or deadline <= ended):
        return DeadlineExceeded(f"task deadline {deadline.isoformat()} passed")
    limit = task.timeout
    span = f" of {limit.total_seconds():g}s" if limit is not None else ""
    return TaskTimeout(f"attempt exceeded its timeout{span}")
