"""The asyncio client against a real broker: same calls, same errors as the sync client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from broker_process import BrokerFactory, BrokerHandle

from leasq_sdk import (
    AsyncClient,
    BrokerUnavailable,
    DuplicateTask,
    EnqueuedTask,
    InvalidTask,
    QueueNotFound,
    TaskDef,
    TaskIdConflict,
    TaskNotFound,
    TaskRequest,
    TaskState,
    Unauthenticated,
    WrongState,
)


@dataclass
class Resize:
    image: str
    width: int


RESIZE = TaskDef("image:resize", Resize, queue="images", max_retry=4)


@pytest.fixture
async def client(broker: BrokerHandle) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(broker.address, timeout=5) as client:
        yield client


async def test_an_async_enqueue_round_trips_its_options(client: AsyncClient) -> None:
    info = await client.enqueue(
        "x", {"k": "v"}, queue="aq", task_id="a1", max_retry=1, timeout=timedelta(seconds=5),
        retention=10, headers={"trace": "t"},
    )  # fmt: skip
    assert (info.id, info.queue, info.state) == ("a1", "aq", TaskState.PENDING)
    task = await client.get_task("aq", "a1")
    assert json.loads(task.payload) == {"k": "v"}
    assert (task.max_retry, task.timeout, task.retention) == (
        1, timedelta(seconds=5), timedelta(seconds=10),
    )  # fmt: skip
    assert task.headers == {"trace": "t", "content-type": "application/json"}


async def test_a_task_def_enqueues_asynchronously_and_decodes_back(client: AsyncClient) -> None:
    info = await RESIZE.enqueue_async(client, Resize("cat.png", 64), task_id="r1")
    task = await client.get_task(info.queue, info.id)
    assert info.queue == "images" and task.max_retry == 4
    assert RESIZE.decode(task.payload) == Resize("cat.png", 64)


async def test_concurrent_async_enqueues_share_one_client(client: AsyncClient) -> None:
    infos = await asyncio.gather(*(client.enqueue("x", b"", queue="many") for _ in range(50)))
    assert len({info.id for info in infos}) == 50
    assert (await client.queue_stats("many")).pending == 50


async def test_async_enqueue_many_mixes_results_and_errors_in_order(client: AsyncClient) -> None:
    await client.enqueue("x", b"u", unique=60)
    results = await client.enqueue_many(
        [
            RESIZE.request(Resize("a.png", 1)),
            TaskRequest("x", b"u", unique=60),
            TaskRequest("", b""),
        ]
    )
    assert isinstance(results[0], EnqueuedTask) and results[0].queue == "images"
    assert isinstance(results[1], DuplicateTask)
    assert isinstance(results[2], InvalidTask) and results[2].field.endswith("type")


async def test_async_inspect_calls_page_pause_and_cancel(client: AsyncClient) -> None:
    for i in range(3):
        await client.enqueue("x", b"", queue="pages", task_id=f"t{i}")
    page = await client.list_tasks("pages", TaskState.PENDING, page_size=2)
    assert [t.id for t in page.tasks] == ["t0", "t1"] and page.total_size == 3
    assert [t.id async for t in client.iter_tasks("pages", "pending", page_size=2)] == [
        "t0", "t1", "t2",
    ]  # fmt: skip
    await client.pause("pages")
    assert [(q.queue, q.paused) for q in await client.list_queues()] == [("pages", True)]
    await client.resume("pages")
    assert not (await client.queue_stats("pages")).paused
    with pytest.raises(QueueNotFound):
        await client.pause("pagez")
    with pytest.raises(WrongState):
        await client.cancel("pages", "t0")


async def test_async_refusals_raise_the_same_typed_exceptions(client: AsyncClient) -> None:
    await client.enqueue("x", b"", task_id="dup")
    with pytest.raises(TaskIdConflict):
        await client.enqueue("x", b"", task_id="dup")
    with pytest.raises(TaskNotFound):
        await client.get_task("default", "missing")


async def test_an_async_client_sends_its_token(broker_factory: BrokerFactory) -> None:
    guarded = broker_factory(auth_token="s3cret")
    async with AsyncClient(guarded.address, timeout=5) as anonymous:
        with pytest.raises(Unauthenticated):
            await anonymous.list_queues()
    async with AsyncClient(guarded.address, token="s3cret", timeout=5) as client:
        assert await client.list_queues() == []


async def test_an_async_enqueue_with_a_task_id_survives_a_broker_restart(
    broker: BrokerHandle,
) -> None:
    async with AsyncClient(broker.address, timeout=30) as client:
        await client.list_queues()
        await broker.stop_async()
        with pytest.raises(BrokerUnavailable):
            await client.enqueue("x", b"", rpc_timeout=0.2)
        pending = asyncio.ensure_future(client.enqueue("x", b"", task_id="restarted"))
        await broker.restart_async()
        assert (await pending).id == "restarted"


def test_an_async_client_made_outside_any_event_loop_connects_on_first_use(
    broker: BrokerHandle,
) -> None:
    client = AsyncClient(broker.address, timeout=5)

    async def use() -> list[str]:
        try:
            await client.enqueue("x", b"", queue="made-early")
            return [q.queue for q in await client.list_queues()]
        finally:
            await client.close()

    assert asyncio.run(use()) == ["made-early"]
