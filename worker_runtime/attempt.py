"""One attempt of one task: run the handler chain, and map how it ended to an outcome.

Returns the :class:`Outcome` to report, or None when nothing may be reported (the lease is
gone). Each attempt is counted by type and outcome with its handler's duration
(:mod:`leasq_worker.metrics`) and runs in an OpenTelemetry span when that is installed
(:mod:`leasq_worker.tracing`). Every failure is shown to the error hooks; per-task logs are at
debug level because they sit on the hot path. A task whose type has no handler here is released
(Nack RELEASE) for a worker that has one, e.g. during a rolling deploy; that is logged once per
type and minute.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from typing import Any

from leasq_worker import metrics, tracing
from leasq_worker.errors import DeadlineExceeded, TaskCanceled, TaskTimeout, UnknownTaskType
from leasq_worker.executor import Executor, encode_result
from leasq_worker.leases import CANCELED, SHUTDOWN, TIMEOUT, HeldLease
from leasq_worker.outcome import REQUEUED, Outcome, ack, failure, released
from leasq_worker.registry import Handler, Registry
from leasq_worker.task import Task

NO_HANDLER_LOG_EVERY = 60.0  # seconds between "no handler" log lines of one task type


class AttemptRunner:
    """Runs attempts for one worker."""

    def __init__(self, registry: Registry, executor: Executor, log: Any) -> None:
        self._hooks = registry.error_hooks
        self._executor = executor
        self._log = log
        self._no_handler = _NoHandlerLog(log)
        is_enabled_for = getattr(log, "is_enabled_for", None)
        self._debug = is_enabled_for(logging.DEBUG) if is_enabled_for is not None else True

    async def run(self, held: HeldLease, handler: Handler | None) -> Outcome | None:
        """Run ``held``'s task with ``handler`` and say what to report."""
        task = held.task
        if handler is None:
            self._no_handler.note(task.type)
            await self._report(task, UnknownTaskType(f"no handler for task type {task.type!r}"))
            metrics.attempt_ended(task.type, metrics.RELEASED, None)
            return released(task.type)
        with tracing.attempt_span(task) as span:
            error: BaseException | None = None
            started = time.perf_counter()
            try:
                value = await self._executor.chain(handler)(task)
                if held.stop_reason is not None:  # the handler swallowed its cancellation
                    raise asyncio.CancelledError
                outcome: Outcome | None = ack(encode_result(value))
            except asyncio.CancelledError:
                if held.stop_reason is None:
                    raise  # the worker itself is being torn down
                outcome = await self._stopped(held)
            except (Exception, SystemExit) as exc:  # sys.exit() in a handler is a failure too
                error = exc
                outcome = failure(exc)
                await self._report(task, exc)
            seconds = time.perf_counter() - started
            label = _label(outcome)
            metrics.attempt_ended(task.type, label, seconds)
            tracing.end_attempt(span, label, error,
                                outcome.error if outcome is not None and label == metrics.FAILED
                                else "")  # fmt: skip
        self._logged(task, outcome, seconds)
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


class _NoHandlerLog:
    """Logs a task type without a handler at most once per ``NO_HANDLER_LOG_EVERY`` seconds,
    with how many tasks of it were released since the last line."""

    def __init__(self, log: Any) -> None:
        self._log = log
        self._next: dict[str, float] = {}
        self._quiet: dict[str, int] = {}

    def note(self, task_type: str) -> None:
        now = time.monotonic()
        if now < self._next.get(task_type, 0.0):
            self._quiet[task_type] = self._quiet.get(task_type, 0) + 1
            return
        self._next[task_type] = now + NO_HANDLER_LOG_EVERY
        self._log.warning(
            "no handler for task type: released for another worker", type=task_type,
            released_since_last_line=self._quiet.pop(task_type, 0) + 1,
        )  # fmt: skip


def _label(outcome: Outcome | None) -> str:
    """The ``outcome`` label of the attempt metrics and span."""
    if outcome is None:
        return metrics.LOST
    if outcome.ack:
        return metrics.SUCCEEDED
    return metrics.REQUEUED if outcome is REQUEUED else metrics.FAILED


def _timeout_error(task: Task) -> Exception:
    """DeadlineExceeded when the task's deadline ended the attempt, else TaskTimeout."""
    deadline, ended = task.deadline, task.attempt_deadline
    if deadline is not None and (ended is None or deadline <= ended):
        return DeadlineExceeded(f"task deadline {deadline.isoformat()} passed")
    limit = task.timeout
    span = f" of {limit.total_seconds():g}s" if limit is not None else ""
    return TaskTimeout(f"attempt exceeded its timeout{span}")
