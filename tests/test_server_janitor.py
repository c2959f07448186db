"""The janitor of a running broker, and key prefixes that keep deployments on one Redis apart.

The janitor runs every ``INTERVAL_S`` seconds; its bounds here follow from that and from the
configured limits: a completed task is removed after its ``expires_at`` (completed_at +
retention) and within one interval of it; an archived task after ``--archive-max-age`` and
within one interval; the archive is trimmed to ``--archive-max-size``, oldest first, within one
interval. Two brokers with their own key prefixes run side by side on the same Redis, so the
waits overlap, and neither's janitor touches the other's tasks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import grpc.aio
import pytest
from broker_process import BrokerFactory
from google.protobuf.duration_pb2 import Duration
from rpc_testing import lease_request, ref, spec
from store_testing import all_keys

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc as pb_grpc
from leasq.v1 import inspect_service_pb2 as ipb
from leasq.v1 import inspect_service_pb2_grpc as ipb_grpc
from leasq.v1 import task_pb2
from leasq_broker.loops.janitor import INTERVAL_S

MARGIN = 1.5  # a loaded machine's delay beyond the janitor's own interval
ARCHIVE_MAX_SIZE = 3
ARCHIVE_MAX_AGE = 1.0
RETENTION = Duration(seconds=1)
QUEUE = "kept"


class Broker:
    """The stubs of one broker."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.broker = pb_grpc.BrokerServiceStub(channel)
        self.inspect = ipb_grpc.InspectServiceStub(channel)

    async def leased(self, task_id: str, **fields: Any) -> Any:
        request = pb.EnqueueRequest(task=spec(queue=QUEUE, task_id=task_id, **fields))
        await self.broker.Enqueue(request, timeout=5)
        leased = await self.broker.Lease(lease_request(QUEUE), timeout=5)
        assert [task.id for task in leased.tasks] == [task_id]
        return leased.tasks[0]

    async def archive(self, task_id: str) -> None:
        task = await self.leased(task_id)
        item = pb.NackItem(lease=ref(task), action=pb.NACK_ACTION_ARCHIVE, error="dead")
        await self.broker.Nack(pb.NackRequest(worker_id="w1", items=[item]), timeout=5)

    async def complete(self, task_id: str, retention: Duration) -> None:
        task = await self.leased(task_id, retention=retention)
        item = pb.AckItem(lease=ref(task), result=b"done")
        await self.broker.Ack(pb.AckRequest(worker_id="w1", items=[item]), timeout=5)

    async def task(self, task_id: str) -> task_pb2.TaskInfo | None:
        try:
            answer = await self.inspect.GetTask(ipb.GetTaskRequest(queue=QUEUE, task_id=task_id),
                                                timeout=5)  # fmt: skip
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.NOT_FOUND, error
            return None
        return answer.task

    async def archived_ids(self) -> list[str]:
        request = ipb.ListTasksRequest(queue=QUEUE, state=task_pb2.TASK_STATE_ARCHIVED)
        return [task.id for task in (await self.inspect.ListTasks(request, timeout=5)).tasks]


@pytest.fixture
async def two_brokers(broker_factory: BrokerFactory) -> AsyncIterator[tuple[Broker, Broker]]:
    """A broker that trims the archive by size (prefix ``jsize``), and one that trims it by age
    (prefix ``jage``), on the same Redis."""
    by_size = broker_factory(key_prefix="jsize", archive_max_size=ARCHIVE_MAX_SIZE)
    by_age = broker_factory(key_prefix="jage", archive_max_age=ARCHIVE_MAX_AGE)
    async with grpc.aio.insecure_channel(by_size.address) as one, \
            grpc.aio.insecure_channel(by_age.address) as other:  # fmt: skip
        yield Broker(one), Broker(other)


async def _removed_at(broker: Broker, task_id: str, within: float) -> float:
    """Poll until the task is gone; the wall-clock time it was first seen gone."""
    give_up = time.monotonic() + within
    while await broker.task(task_id) is not None:
        assert time.monotonic() < give_up, f"{task_id} still there after {within:.1f}s"
        await asyncio.sleep(0.05)
    return time.time()


def _seconds(stamp: Any) -> float:
    return float(stamp.seconds + stamp.nanos / 1e9)


async def test_the_janitor_removes_expired_results_and_trims_the_archive_by_age_and_size(
    two_brokers: tuple[Broker, Broker],
) -> None:
    by_size, by_age = two_brokers
    names = [f"a{n}" for n in range(5)]
    for broker in (by_size, by_age):
        for task_id in names:
            await broker.archive(task_id)
        await broker.complete("short", RETENTION)
        await broker.complete("long", Duration(seconds=3600))
    short = await by_size.task("short")
    assert short is not None and short.state == task_pb2.TASK_STATE_COMPLETED
    expires = _seconds(short.expires_at)
    assert expires == pytest.approx(_seconds(short.completed_at) + 1, abs=0.01)
    archived_at = {name: _seconds((await by_age.task(name)).archived_at)  # type: ignore[union-attr]
                   for name in names}  # fmt: skip

    # A completed task stays for its retention, and goes within one janitor interval after.
    gone = await _removed_at(by_size, "short", within=expires - time.time() + INTERVAL_S + MARGIN)
    assert expires <= gone <= expires + INTERVAL_S + MARGIN
    # Archived tasks go once older than --archive-max-age, within one interval after.
    for name in names:
        gone = await _removed_at(by_age, name, within=INTERVAL_S + MARGIN)
        assert archived_at[name] + ARCHIVE_MAX_AGE <= gone
        assert gone <= archived_at[name] + ARCHIVE_MAX_AGE + INTERVAL_S + MARGIN
    # The other broker's archive is trimmed to its cap (the oldest go), not by age.
    give_up = time.monotonic() + INTERVAL_S + MARGIN
    while len(archived := await by_size.archived_ids()) > ARCHIVE_MAX_SIZE:
        assert time.monotonic() < give_up, f"archive not trimmed to {ARCHIVE_MAX_SIZE}: {archived}"
        await asyncio.sleep(0.05)
    assert sorted(archived) == names[-ARCHIVE_MAX_SIZE:]
    # What is within its limits stays: a long retention, young archived tasks.
    for broker in (by_size, by_age):
        kept = await broker.task("long")
        assert kept is not None and kept.result == b"done"
    assert await by_age.task("short") is None


async def test_brokers_with_different_key_prefixes_on_one_redis_never_see_each_other(
    broker_factory: BrokerFactory, redis_client: Any
) -> None:
    first = broker_factory(key_prefix="first")
    second = broker_factory(key_prefix="second")
    async with grpc.aio.insecure_channel(first.address) as one, \
            grpc.aio.insecure_channel(second.address) as other:  # fmt: skip
        a, b = Broker(one), Broker(other)
        unique = {"unique_ttl": Duration(seconds=60), "unique_key": "k"}
        for broker, payload in ((a, b"first"), (b, b"second")):
            # Same queue, same task id, same unique key: no conflict across prefixes.
            request = pb.EnqueueRequest(task=spec(queue=QUEUE, task_id="same", payload=payload,
                                                  **unique))  # fmt: skip
            await broker.broker.Enqueue(request, timeout=5)
        assert [(await broker.task("same")).payload for broker in (a, b)] == [  # type: ignore[union-attr]
            b"first", b"second"]  # fmt: skip

        # A long poll on the first broker is not woken by a task for the second.
        wait = 1.0
        started = time.monotonic()
        polling = asyncio.ensure_future(a.broker.Lease(
            lease_request("solo", wait=Duration(seconds=int(wait))), timeout=10))  # fmt: skip
        await b.broker.Enqueue(pb.EnqueueRequest(task=spec(queue="solo")), timeout=5)
        assert list((await polling).tasks) == []
        assert time.monotonic() - started >= wait - 0.05
        assert len((await b.broker.Lease(lease_request("solo"), timeout=5)).tasks) == 1

        names = [[q.queue for q in (await broker.inspect.ListQueues(
            ipb.ListQueuesRequest(), timeout=5)).queues] for broker in (a, b)]  # fmt: skip
        assert names == [[QUEUE], [QUEUE, "solo"]]
        stats = await a.inspect.GetQueueStats(ipb.GetQueueStatsRequest(queue="solo"), timeout=5)
        assert (stats.stats.pending, stats.stats.active) == (0, 0)
    keys = [key.decode() for key in await all_keys(redis_client)]
    assert keys and all(key.split(":", 1)[0] in ("first", "second") for key in keys), keys
