"""How handler endings become broker state: ack, retry, archive, retry-after, results."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import pytest
from waiting import MARGIN, SETTLE, within
from worker_testing import enqueue, get_task, stop

from leasq.v1 import inspect_service_pb2 as ipb
from leasq.v1 import task_pb2
from leasq_worker import Registry, RetryAfter, SkipRetry, Task
from leasq_worker.rpc import duration as seconds

DELAY = 0.3  # of RetryAfter


async def test_a_returned_value_is_acked_and_stored_as_the_result(
    broker_stub: Any, inspect_stub: Any, start_worker: Any, queue: str
) -> None:
    registry = Registry()
    seen: list[Task] = []
    done = asyncio.Event()

    @registry.handler("image:resize")
    async def resize(task: Task) -> dict[str, Any]:
        seen.append(task)
        done.set()
        return {"width": task.json()["w"] // 2}

    task_id = await enqueue(
        broker_stub, "image:resize", queue, payload=b'{"w": 640}',
        headers={"tenant": "acme"}, retention=seconds(60),
    )  # fmt: skip
    worker = await start_worker(registry, queues=[queue])
    await within(SETTLE, done.wait(), "the handler never ran")
    await stop(worker)

    info = await get_task(inspect_stub, queue, task_id)
    assert info.state == task_pb2.TASK_STATE_COMPLETED
    assert info.result == b'{"width":320}'
    task = seen[0]
    assert (task.id, task.type, task.queue) == (task_id, "image:resize", queue)
    assert task.headers == {"tenant": "acme"}
    assert (task.retry_count, task.max_retry, task.attempt) == (0, 25, 1)


async def test_a_success_without_retention_deletes_the_task(
    broker_stub: Any, inspect_stub: Any, start_worker: Any, queue: str
) -> None:
    registry = Registry()
    done = asyncio.Event()

    @registry.handler("noop")
    async def noop(task: Task) -> None:
        done.set()

    task_id = await enqueue(broker_stub, "noop", queue)
    worker = await start_worker(registry, queues=[queue])
    await within(SETTLE, done.wait(), "the handler never ran")
    await stop(worker)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await get_task(inspect_stub, queue, task_id)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


async def test_an_exception_is_retried_with_backoff_and_its_error_recorded(
    broker_stub: Any, inspect_stub: Any, start_worker: Any, queue: str
) -> None:
    registry = Registry()
    done = asyncio.Event()

    @registry.handler("flaky")
    async def flaky(task: Task) -> None:
        done.set()
        raise ConnectionError("smtp server said no")

    task_id = await enqueue(broker_stub, "flaky", queue)
    worker = await start_worker(registry, queues=[queue])
    await within(SETTLE, done.wait(), "the handler never ran")
    await stop(worker)
    info = await get_task(inspect_stub, queue, task_id)
    assert info.state == task_pb2.TASK_STATE_RETRY
    assert info.retried == 1
    assert info.last_error == "smtp server said no"
    assert info.last_error_type == "ConnectionError"
    backoff = info.next_process_at.seconds - time.time()
    assert 10 < backoff < 60  # retried^4 + 15 + rand(0..29) * (retried + 1), at retried = 0


async def test_skip_retry_archives_the_task_at_once(
    broker_stub: Any, inspect_stub: Any, start_worker: Any, queue: str
) -> None:
    registry = Registry()
    done = asyncio.Event()

    @registry.handler("bad:input")
    def reject(task: Task) -> None:
        done.set()
        raise SkipRetry("payload has no user id")

    task_id = await enqueue(broker_stub, "bad:input", queue)
    worker = await start_worker(registry, queues=[queue])
    await within(SETTLE, done.wait(), "the handler never ran")
    await stop(worker)
    info = await get_task(inspect_stub, queue, task_id)
    assert info.state == task_pb2.TASK_STATE_ARCHIVED
    assert (info.last_error, info.last_error_type) == ("payload has no user id", "SkipRetry")


async def test_retry_after_retries_at_the_given_delay(
    broker_stub: Any, inspect_stub: Any, start_worker: Any, queue: str
) -> None:
    registry = Registry()
    attempts: list[tuple[int, float]] = []
    second = asyncio.Event()

    @registry.handler("rate:limited")
    async def limited(task: Task) -> str:
        attempts.append((task.retry_count, time.monotonic()))
        if task.retry_count == 0:
            raise RetryAfter(DELAY)
        second.set()
        return "ok"

    task_id = await enqueue(broker_stub, "rate:limited", queue, retention=seconds(60))
    worker = await start_worker(registry, queues=[queue])
    await within(SETTLE + DELAY + MARGIN, second.wait(), lambda: f"no second attempt: {attempts}")
    await stop(worker)
    assert [retried for retried, _ in attempts] == [0, 1]
    # Not before the delay, and at once after it (the retry is due then; the worker long-polls).
    assert DELAY <= attempts[1][1] - attempts[0][1] <= DELAY + MARGIN
    info = await get_task(inspect_stub, queue, task_id)
    assert (info.state, info.result, info.retried) == (task_pb2.TASK_STATE_COMPLETED, b"ok", 1)
    assert info.last_error_type == "RetryAfter"


async def test_a_task_without_a_handler_is_released_unspent_and_run_by_a_worker_that_has_one(
    broker_stub: Any, inspect_stub: Any, start_worker: Any, queue: str
) -> None:
    old = Registry()
    failures: list[BaseException] = []
    released = asyncio.Event()

    @old.handler("email:welcome")
    async def welcome(task: Task) -> None: ...

    @old.on_error
    def record(task: Task, exc: BaseException) -> None:
        failures.append(exc)
        released.set()

    task_id = await enqueue(broker_stub, "sms:welcome", queue, retention=seconds(60))
    worker = await start_worker(old, queues=[queue])
    await within(SETTLE, released.wait(), "the task without a handler was not released")
    await stop(worker)  # returns once the release is reported
    info = await get_task(inspect_stub, queue, task_id)
    assert (info.state, info.released_count, info.retried) == (task_pb2.TASK_STATE_RETRY, 1, 0)
    assert info.last_error_type == "NoHandler"
    assert "sms:welcome" in info.last_error
    assert [type(exc).__name__ for exc in failures] == ["UnknownTaskType"]

    # A worker with the handler (e.g. the new version in a rolling deploy) runs it; the
    # release wait (10 s) is cut short by an operator's "run now".
    new = Registry()
    ran = asyncio.Event()

    @new.handler("sms:welcome")
    async def sms(task: Task) -> str:
        ran.set()
        return "sent"

    await inspect_stub.RunTask(ipb.RunTaskRequest(queue=queue, task_id=task_id))
    worker = await start_worker(new, queues=[queue])
    await within(SETTLE, ran.wait(), "the released task did not run on the worker with a handler")
    await stop(worker)
    info = await get_task(inspect_stub, queue, task_id)
    assert (info.state, info.result) == (task_pb2.TASK_STATE_COMPLETED, b"sent")
    assert (info.released_count, info.retried) == (1, 0)
