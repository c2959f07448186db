"""Where handlers run and how they are wrapped: async, thread, process; middleware and hooks."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import timestamp_pb2
from waiting import MARGIN, SETTLE, within
from worker_apps import cpu
from worker_testing import enqueue, get_task, stop

from leasq.v1 import inspect_service_pb2 as ipb
from leasq.v1 import task_pb2
from leasq_sdk import AsyncClient, TaskDef
from leasq_worker import CallNext, Registry, SkipRetry, Task
from leasq_worker.rpc import duration as seconds

TIMEOUT = 0.3  # of the attempts that must time out


async def test_middleware_wraps_handlers_in_registration_order(
    broker_stub: Any, inspect_stub: Any, start_worker: Any, queue: str
) -> None:
    registry = Registry()
    calls: list[str] = []
    done = asyncio.Event()

    @registry.middleware
    async def outer(task: Task, call_next: CallNext) -> Any:
        calls.append("outer:before")
        result = await call_next(task)
        calls.append("outer:after")
        done.set()
        return result

    @registry.middleware
    async def inner(task: Task, call_next: CallNext) -> Any:
        calls.append("inner:before")
        result = await call_next(task)
        calls.append("inner:after")
        return result.upper()

    @registry.handler("greet")
    async def greet(task: Task) -> str:
        calls.append("handler")
        return "hello"

    task_id = await enqueue(broker_stub, "greet", queue, retention=seconds(60))
    worker = await start_worker(registry, queues=[queue])
    await within(SETTLE, done.wait(), lambda: f"the chain never finished: {calls}")
    await stop(worker)
    assert calls == ["outer:before", "inner:before", "handler", "inner:after", "outer:after"]
    assert (await get_task(inspect_stub, queue, task_id)).result == b"HELLO"


async def test_the_error_hook_sees_every_failure(
    broker_stub: Any, start_worker: Any, queue: str
) -> None:
    registry = Registry()
    seen: dict[str, str] = {}
    all_seen = asyncio.Event()

    @registry.handler("fail:plain")
    async def plain(task: Task) -> None:
        raise ValueError("plain")

    @registry.handler("fail:skip")
    def skip(task: Task) -> None:
        raise SkipRetry("skip")

    @registry.handler("fail:slow")
    async def slow(task: Task) -> None:
        await asyncio.sleep(30)

    @registry.handler("ok")
    async def ok(task: Task) -> None: ...

    @registry.on_error
    async def hook(task: Task, exc: BaseException) -> None:
        seen[task.type] = type(exc).__name__
        if len(seen) == 4:
            all_seen.set()

    for task_type in ("fail:plain", "fail:skip", "ok", "fail:unknown"):
        await enqueue(broker_stub, task_type, queue)
    await enqueue(broker_stub, "fail:slow", queue, timeout=seconds(0.2))
    worker = await start_worker(registry, queues=[queue])
    await within(SETTLE, all_seen.wait(), lambda: f"the error hook saw only {seen}")
    await stop(worker)
    assert seen == {
        "fail:plain": "ValueError",
        "fail:skip": "SkipRetry",
        "fail:slow": "TaskTimeout",
        "fail:unknown": "UnknownTaskType",
    }


async def test_async_handlers_run_on_the_loop_and_sync_handlers_in_threads(
    broker_stub: Any, start_worker: Any, queue: str
) -> None:
    registry = Registry()
    threads: dict[str, str] = {}
    both = asyncio.Event()

    @registry.handler("where:async")
    async def on_loop(task: Task) -> None:
        threads["async"] = threading.current_thread().name
        both.set()  # leased after the sync task finished: concurrency is 1

    @registry.handler("where:sync")
    def in_thread(task: Task) -> None:
        time.sleep(0.01)  # blocking is fine here: the loop keeps serving
        threads["sync"] = threading.current_thread().name

    await enqueue(broker_stub, "where:sync", queue)
    await enqueue(broker_stub, "where:async", queue)
    worker = await start_worker(registry, queues=[queue], concurrency=1)
    await within(SETTLE, both.wait(), lambda: f"not both handlers ran: {threads}")
    await stop(worker)
    assert threads["async"] == threading.current_thread().name
    assert threads["sync"].startswith("leasq-sync")


async def test_process_handlers_run_in_another_process_and_return_results(
    broker_stub: Any, inspect_stub: Any, start_worker: Any, queue: str
) -> None:
    registry = Registry()
    registry.add("cpu:square", cpu.square, process=True)
    registry.add("cpu:refuse", cpu.refuse, process=True)
    failed = asyncio.Event()
    registry.on_error(lambda task, exc: failed.set())
    square_id = await enqueue(
        broker_stub, "cpu:square", queue, payload=b'{"n": 12}', retention=seconds(60)
    )
    refuse_id = await enqueue(broker_stub, "cpu:refuse", queue)
    worker = await start_worker(registry, queues=[queue], processes=1)
    await within(SETTLE, failed.wait(), "the refusing process handler never failed")
    await stop(worker)
    result = await get_task(inspect_stub, queue, square_id)
    assert result.state == task_pb2.TASK_STATE_COMPLETED
    assert b'"square":144' in result.result
    assert f'"pid":{os.getpid()}'.encode() not in result.result
    refused = await get_task(inspect_stub, queue, refuse_id)
    assert (refused.state, refused.last_error_type) == (task_pb2.TASK_STATE_ARCHIVED, "SkipRetry")


async def test_a_timed_out_async_handler_is_cancelled_and_fails_as_a_timeout(
    broker_stub: Any, inspect_stub: Any, start_worker: Any, queue: str
) -> None:
    registry = Registry()
    started, cancelled = asyncio.Event(), asyncio.Event()
    started_at: list[float] = []

    @registry.handler("slow")
    async def slow(task: Task) -> None:
        started_at.append(time.monotonic())
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            started_at.append(time.monotonic())
            cancelled.set()
            raise

    enqueued_at = time.monotonic()
    task_id = await enqueue(broker_stub, "slow", queue, timeout=seconds(TIMEOUT))
    worker = await start_worker(registry, queues=[queue])
    await within(SETTLE, started.wait(), "the handler never started")
    await within(TIMEOUT + MARGIN, cancelled.wait(), "the handler was not cancelled at its timeout")
    start, cancel = started_at
    # The attempt's clock starts at the lease, after the enqueue and before the handler.
    assert cancel - enqueued_at >= TIMEOUT
    assert cancel - start <= TIMEOUT + MARGIN
    await stop(worker)
    info = await get_task(inspect_stub, queue, task_id)
    assert (info.state, info.last_error_type) == (task_pb2.TASK_STATE_RETRY, "TaskTimeout")
    assert "timeout" in info.last_error


async def test_a_timed_out_sync_handler_is_signalled_and_its_late_result_discarded(
    broker_stub: Any, inspect_stub: Any, start_worker: Any, queue: str
) -> None:
    registry = Registry()
    signalled = threading.Event()
    returned = asyncio.Event()
    loop = asyncio.get_running_loop()

    @registry.handler("slow:sync")
    def slow(task: Task) -> str:
        signalled.set() if task.cancel_event.wait(TIMEOUT + MARGIN) else None
        loop.call_soon_threadsafe(returned.set)
        return "late"

    task_id = await enqueue(
        broker_stub, "slow:sync", queue, timeout=seconds(TIMEOUT), retention=seconds(60)
    )
    worker = await start_worker(registry, queues=[queue])
    await within(SETTLE + TIMEOUT + MARGIN, returned.wait(), "the sync handler never returned")
    await stop(worker)
    assert signalled.is_set(), f"no cancel signal within {TIMEOUT + MARGIN}s of the start"
    info = await get_task(inspect_stub, queue, task_id)
    assert (info.state, info.last_error_type) == (task_pb2.TASK_STATE_RETRY, "TaskTimeout")
    assert info.result == b""


async def test_a_timed_out_process_handler_is_killed(
    broker_stub: Any, inspect_stub: Any, start_worker: Any, queue: str, tmp_path: Path
) -> None:
    registry = Registry()
    registry.add("cpu:spin", cpu.spin, process=True)
    failed = asyncio.Event()
    registry.on_error(lambda task, exc: failed.set())
    pid_file = tmp_path / "pid"
    payload = f'{{"pid_file": "{pid_file}"}}'.encode()
    task_id = await enqueue(broker_stub, "cpu:spin", queue, payload=payload, timeout=seconds(2))
    worker = await start_worker(registry, queues=[queue], processes=1)
    await within(SETTLE + 2, failed.wait(), "the spinning process handler never timed out")
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped
    await stop(worker)
    info = await get_task(inspect_stub, queue, task_id)
    assert (info.state, info.last_error_type) == (task_pb2.TASK_STATE_RETRY, "TaskTimeout")


async def test_an_attempt_past_the_task_deadline_is_archived_as_deadline_exceeded(
    broker_stub: Any, inspect_stub: Any, start_worker: Any, queue: str
) -> None:
    registry = Registry()
    failed = asyncio.Event()

    @registry.handler("slow")
    async def slow(task: Task) -> None:
        assert task.deadline is not None
        await asyncio.sleep(30)

    registry.on_error(lambda task, exc: failed.set())
    deadline = timestamp_pb2.Timestamp()
    deadline.FromNanoseconds(time.time_ns() + 500_000_000)
    task_id = await enqueue(broker_stub, "slow", queue, deadline=deadline)
    worker = await start_worker(registry, queues=[queue])
    await within(SETTLE, failed.wait(), "the attempt did not end at the task deadline")
    await stop(worker)
    info = await get_task(inspect_stub, queue, task_id)
    assert (info.state, info.last_error_type) == (task_pb2.TASK_STATE_ARCHIVED, "DeadlineExceeded")


async def test_an_operator_cancel_stops_the_handler_and_archives_the_task(
    broker_stub: Any, inspect_stub: Any, start_worker: Any, queue: str
) -> None:
    registry = Registry()
    started = asyncio.Event()
    cancelled = asyncio.Event()

    @registry.handler("long")
    async def long(task: Task) -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    task_id = await enqueue(broker_stub, "long", queue)
    worker = await start_worker(registry, queues=[queue], lease_duration=1.5)
    await within(SETTLE, started.wait(), "the handler never started")
    await inspect_stub.CancelTask(ipb.CancelTaskRequest(queue=queue, task_id=task_id))
    # The worker hears of the cancel at its next heartbeat.
    await within(worker.heartbeat_interval + MARGIN, cancelled.wait(),
                 "the handler was not cancelled at the next heartbeat")  # fmt: skip
    await stop(worker)
    info = await get_task(inspect_stub, queue, task_id)
    assert (info.state, info.last_error) == (task_pb2.TASK_STATE_ARCHIVED, "canceled")


@dataclasses.dataclass
class Welcome:
    user_id: int
    locale: str = "en"


WELCOME = TaskDef("email:welcome", Welcome)


async def test_a_handler_registered_from_a_task_definition_gets_its_decoded_payload(
    broker: Any, start_worker: Any, queue: str
) -> None:
    registry = Registry()
    received: list[Any] = []
    done = asyncio.Event()

    @registry.handler(WELCOME)
    async def welcome(task: Task) -> None:
        received.append(task.decode())
        done.set()

    async with AsyncClient(broker.address) as client:
        await client.enqueue(WELCOME.name, {"user_id": 7, "locale": "fr"}, queue=queue)
    worker = await start_worker(registry, queues=[queue])
    await within(SETTLE, done.wait(), "the handler never ran")
    await stop(worker)
    assert received == [Welcome(user_id=7, locale="fr")]
