"""Group aggregation against a real broker: grouped bulk enqueue vs ungrouped, flush lateness.

Run: ``.venv/bin/python benchmarks/groups_bench.py`` (starts its own Redis and broker).
Enqueues 100,000 tasks with EnqueueBatch(1000) ungrouped, then 100,000 into 1,000 groups (the
default max size of 100 flushes every group by size, inside the enqueue), and measures how long
after its due instant an idle broker flushes a group (grace 50 ms).
Targets: grouped enqueue within 1.5x of ungrouped; flush lateness p99 <= 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

import grpc
from broker_bench import broker_pid, measured
from google.protobuf.duration_pb2 import Duration
from harness import print_cpu_table, running_stack

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc as pb_grpc
from leasq.v1 import inspect_service_pb2 as ipb
from leasq.v1 import inspect_service_pb2_grpc as ipb_grpc
from leasq.v1 import task_pb2

PAYLOAD = b'{"user_id": 12345, "event": "comment"}'
BATCH = 1000
GRACE_MS = 50


def batch(queue: str, groups: int) -> pb.EnqueueBatchRequest:
    return pb.EnqueueBatchRequest(tasks=[
        task_pb2.TaskSpec(type="bench:digest", payload=PAYLOAD, queue=queue,
                          group=f"user:{i % groups}" if groups else "")
        for i in range(BATCH)])


async def bulk(stub: pb_grpc.BrokerServiceStub, n: int, queue: str, groups: int) -> float:
    request = batch(queue, groups)
    remaining = n // BATCH

    async def client() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await stub.EnqueueBatch(request)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(4)))
    return n / (time.perf_counter() - started)


async def lateness(stub: pb_grpc.BrokerServiceStub, samples: int) -> list[float]:
    """ms from each group's due instant (last join + grace) to its flush, one group at a time."""
    out = []
    lease = pb.LeaseRequest(worker_id="bench", queues=[pb.QueueWeight(queue="late")],
                            wait=Duration(seconds=5))
    for n in range(samples):
        await stub.Enqueue(pb.EnqueueRequest(task=task_pb2.TaskSpec(
            type="bench:digest", payload=PAYLOAD, queue="late", group=f"g{n}")))
        [task] = (await stub.Lease(lease)).tasks
        due = task.members[0].enqueued_at.ToMilliseconds() + GRACE_MS
        out.append(task.enqueued_at.ToMilliseconds() - due)
        await stub.Ack(pb.AckRequest(worker_id="bench", items=[pb.AckItem(lease=pb.LeaseRef(
            queue="late", task_id=task.id, lease_token=task.lease_token))]))
    return out


async def main(scale: float) -> None:
    load_before = os.getloadavg()
    with running_stack() as stack:
        pid = broker_pid(stack.workdir)
        async with grpc.aio.insecure_channel(stack.address) as channel:
            stub = pb_grpc.BrokerServiceStub(channel)
            inspect = ipb_grpc.InspectServiceStub(channel)
            await inspect.UpdateQueueSettings(ipb.UpdateQueueSettingsRequest(
                queue="late", settings=ipb.QueueSettings(groups=ipb.GroupSettings(
                    grace_period=Duration(nanos=GRACE_MS * 1_000_000)))))
            await stub.EnqueueBatch(batch("warmup", 10))
            n = int(100_000 * scale) // BATCH * BATCH
            plain = await measured(pid, n, bulk(stub, n, "plain", 0))
            grouped = await measured(pid, n, bulk(stub, n, "grouped", 1000))
            late = sorted(await lateness(stub, int(200 * scale) or 20))
    p50 = statistics.median(late)
    p99 = late[min(len(late) - 1, int(len(late) * 0.99))]
    rows = [
        ("EnqueueBatch(1000), ungrouped", f"{plain[0]:,.0f} tasks/s", f"{plain[1]:.1f}", ""),
        ("EnqueueBatch(1000), 1,000 groups", f"{grouped[0]:,.0f} tasks/s", f"{grouped[1]:.1f}",
         f"ratio {plain[0] / grouped[0]:.2f}x (target <= 1.5x)"),
        ("flush lateness while idle, p50", f"{p50:.0f} ms", "", ""),
        ("flush lateness while idle, p99", f"{p99:.0f} ms", "", "<= 100 ms"),
    ]
    print_cpu_table(rows, load_before)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply task counts")
    asyncio.run(main(parser.parse_args().scale))
