"""One attempt of one task: run the handler chain under the attempt deadline, map the ending.

Returns the :class:`Outcome` to report, or None when nothing may be reported (the lease is
gone). Every failure is shown to the error hooks; per-task logs are at debug level because they
sit on the hot path.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any

from leasq_worker.errors import DeadlineExceeded, TaskCanceled, TaskTimeout, UnknownTaskType
from leasq_worker.executor import Executor, encode_result
from leasq_worker.leases import CANCELED, SHUTDOWN, HeldLease
from leasq_worker.outcome import REQUEUED, Outcome, ack, failure
from leasq_worker.registry import Handler, Registry
from leasq_worker.task import Task


class AttemptRunner:
    """Runs attempts for one worker."""

    def __init__(self, registry: Registry, executor: Executor, log: Any) -> None:
        self._hooks = registry.error_hooks
        self._executor = executor
        self._log = log

    async def run(self, held: HeldLease, handler: Handler | None) -> Outcome | None:
        """Run ``held``'s task with ``handler`` and say what to report."""
        task = held.task
        started = time.perf_counter()
        try:
            if handler is None:
                raise UnknownTaskType(f"no handler registered for task type {task.type!r}")
            value = await self._call(held, handler)
            outcome: Outcome | None = ack(encode_result(value))
        except asyncio.CancelledError:
            if held.stop_reason is None:
                raise  # the worker itself is being torn down
            outcome = await self._stopped(held)
        except Exception as exc:
            outcome = failure(exc)
            await self._report(task, exc)
        self._logged(task, outcome, time.perf_counter() - started)
        return outcome

    async def _call(self, held: HeldLease, handler: Handler) -> Any:
        chain = self._executor.chain(handler)
        if held.deadline is None:
            return await chain(held.task)
        timeout = asyncio.timeout_at(held.deadline)
        try:
            async with timeout:
                return await chain(held.task)
        except TimeoutError:
            if not timeout.expired():
                raise  # the handler's own TimeoutError: an ordinary failure
            held.task.request_cancel("timeout")
            raise _timeout_error(held.task) from None

    async def _stopped(self, held: HeldLease) -> Outcome | None:
        if held.stop_reason == SHUTDOWN:
            return REQUEUED
        if held.stop_reason == CANCELED:
            exc = TaskCanceled("canceled")
            await self._report(held.task, exc)
            return failure(exc)
        return None

    async def _report(self, task: Task, exc: BaseException) -> None:
        for hook in self._hooks:
            try:
                result = hook(task, exc)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                self._log.exception("error hook failed", task_id=task.id, type=task.type)

    def _logged(self, task: Task, outcome: Outcome | None, seconds: float) -> None:
        fields = {
            "task_id": task.id,
            "type": task.type,
            "queue": task.queue,
            "attempt": task.attempt,
            "duration_ms": round(seconds * 1000, 3),
        }
        if outcome is None:
            self._log.info("task dropped", reason=task.cancel_reason, **fields)
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
