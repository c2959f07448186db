"""Three real broker replicas on one Redis fire a 1-second schedule exactly once per tick, also
while one of them is killed with SIGKILL mid-run."""

from __future__ import annotations

import asyncio

import grpc
from broker_process import BrokerFactory
from google.protobuf.duration_pb2 import Duration
from rpc_testing import lease_request, ref

from leasq.v1 import broker_service_pb2 as bpb
from leasq.v1 import broker_service_pb2_grpc, schedule_service_pb2_grpc
from leasq.v1 import schedule_service_pb2 as pb

TICKS = 60
KILL_AFTER = 20


async def test_a_one_second_schedule_fires_each_tick_once_across_replicas_despite_a_kill(
    broker_factory: BrokerFactory,
) -> None:
    replicas = [broker_factory() for _ in range(3)]
    async with grpc.aio.insecure_channel(replicas[1].address) as channel:
        schedules = schedule_service_pb2_grpc.ScheduleServiceStub(channel)
        broker = broker_service_pb2_grpc.BrokerServiceStub(channel)
        template = pb.TaskTemplate(type="t:tick", queue="ticks")
        await schedules.UpsertSchedule(pb.UpsertScheduleRequest(
            schedule=pb.Schedule(name="tick", spec="@every 1s", template=template)))
        seen: list[str] = []
        while len(seen) < TICKS:
            leased = await broker.Lease(lease_request("ticks", max_tasks=10,
                                                      wait=Duration(seconds=5)))
            assert leased.tasks, "no fire within 5 s: the scheduler stopped"
            seen += [task.id for task in leased.tasks]
            await broker.Ack(bpb.AckRequest(worker_id="w1", items=[
                bpb.AckItem(lease=ref(task)) for task in leased.tasks]))
            if len(seen) >= KILL_AFTER and replicas[0].running:
                await asyncio.to_thread(replicas[0].kill)
    ticks = sorted(int(task_id.rsplit(":", 1)[1]) for task_id in seen)
    assert len(set(seen)) == len(seen), "a tick was fired twice"
    assert ticks == list(range(ticks[0], ticks[0] + 1000 * len(ticks), 1000)), "a tick is missing"
