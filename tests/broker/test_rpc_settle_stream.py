"""SettleStream: Ack and Nack calls one message each on one call, answered under their ids as
the unary calls would answer them."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import grpc
import grpc.aio
from broker_process import BrokerFactory
from google.protobuf.duration_pb2 import Duration
from rpc_testing import lease_request, ref, refusal, spec

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc, inspect_service_pb2_grpc, task_pb2
from leasq.v1 import inspect_service_pb2 as ipb

METHOD = "/leasq.v1.BrokerService/SettleStream"
METHOD_NAME = "SettleStream"


async def leased(stub: Any, queue: str, count: int) -> list[task_pb2.LeasedTask]:
    await stub.EnqueueBatch(pb.EnqueueBatchRequest(tasks=[spec(queue=queue)] * count))
    tasks = list((await stub.Lease(lease_request(queue, max_tasks=count))).tasks)
    assert len(tasks) == count
    return tasks


async def state(inspect: Any, task: task_pb2.LeasedTask) -> int:
    answer = await inspect.GetTask(ipb.GetTaskRequest(queue=task.queue, task_id=task.id))
    return int(answer.task.state)


async def test_acks_and_nacks_are_served_as_their_unary_calls_and_answered_under_their_ids(
    broker_stub: Any, inspect_stub: Any
) -> None:
    queue = "settled-on-stream"
    done, failed, stale, batch_a, batch_b = await leased(broker_stub, queue, 5)
    await broker_stub.Enqueue(pb.EnqueueRequest(task=spec(queue=queue, payload=b"next")))
    retry = pb.NackItem(lease=ref(failed), action=pb.NACK_ACTION_RETRY, error="boom",
                        retry_after=Duration(seconds=60))  # fmt: skip
    requests = [
        pb.SettleStreamRequest(id=10, ack=pb.AckRequest(
            worker_id="w1", items=[pb.AckItem(lease=ref(done))],
            lease_next=lease_request(queue))),
        pb.SettleStreamRequest(id=11, nack=pb.NackRequest(worker_id="w1", items=[retry])),
        pb.SettleStreamRequest(id=12, ack=pb.AckRequest(
            worker_id="w1", items=[pb.AckItem(lease=ref(stale, token="not-the-token"))])),
        pb.SettleStreamRequest(id=13, ack=pb.AckRequest(worker_id="w1", items=[
            pb.AckItem(lease=ref(batch_a)),
            pb.AckItem(lease=ref(batch_b, token="not-the-token"))])),
        pb.SettleStreamRequest(id=14),  # neither ack nor nack
        pb.SettleStreamRequest(id=15, ack=pb.AckRequest(items=[pb.AckItem(lease=ref(stale))])),
    ]

    async def sent() -> Any:
        for request in requests:  # all written before any answer is read: pipelined
            yield request

    call = broker_stub.SettleStream(sent())
    answers = {answer.id: answer async for answer in call}
    assert await call.code() == grpc.StatusCode.OK
    assert sorted(answers) == [10, 11, 12, 13, 14, 15]
    acked = answers[10].ack
    assert [r.task_id for r in acked.results] == [done.id]
    assert [t.payload for t in acked.next_tasks] == [b"next"]  # lease_next served
    nacked = answers[11].nack
    assert [r.task_id for r in nacked.results] == [failed.id]
    assert nacked.next_process_at[0].seconds >= time.time() + 50
    # A single stale item fails as the unary call would; the stream goes on.
    assert (answers[12].error.code, answers[12].error.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION.value[0], "LEASE_LOST")
    mixed = answers[13].ack.results
    assert [r.HasField("error") for r in mixed] == [False, True]
    assert mixed[1].error.reason == "LEASE_LOST"
    assert (answers[14].error.code, answers[14].error.field) == (
        grpc.StatusCode.INVALID_ARGUMENT.value[0], "call")
    assert (answers[15].error.code, answers[15].error.field) == (
        grpc.StatusCode.INVALID_ARGUMENT.value[0], "worker_id")
    assert await state(inspect_stub, failed) == task_pb2.TASK_STATE_RETRY
    assert await state(inspect_stub, stale) == task_pb2.TASK_STATE_ACTIVE
    assert await state(inspect_stub, batch_b) == task_pb2.TASK_STATE_ACTIVE
    stats = await inspect_stub.GetQueueStats(ipb.GetQueueStatsRequest(queue=queue))
    assert stats.stats.active == 3  # stale, batch_b, and the task lease_next leased


async def test_a_message_that_is_not_protobuf_ends_the_stream_after_the_earlier_are_answered(
    grpc_channel: grpc.aio.Channel, broker_stub: Any, inspect_stub: Any
) -> None:
    (task,) = await leased(broker_stub, "garbled-settle", 1)
    raw = grpc_channel.stream_stream(METHOD)  # bytes in, bytes out
    good = pb.SettleStreamRequest(id=7, ack=pb.AckRequest(
        worker_id="w1", items=[pb.AckItem(lease=ref(task))]))

    async def sent() -> Any:
        yield good.SerializeToString()
        yield b"\xff\xff\xff"

    call = raw(sent())
    answers: list[pb.SettleStreamResponse] = []

    async def read_all() -> None:
        async for data in call:
            answers.append(pb.SettleStreamResponse.FromString(data))

    refused = await refusal(read_all())
    assert [(a.id, a.WhichOneof("outcome")) for a in answers] == [(7, "ack")]
    assert (refused.code, refused.reason, refused.field) == (
        grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD", "request")
    gone = await refusal(inspect_stub.GetTask(ipb.GetTaskRequest(queue=task.queue,
                                                                 task_id=task.id)))
    assert gone.code == grpc.StatusCode.NOT_FOUND  # acked, and kept for no retention


async def test_an_idle_stream_ends_unavailable_when_the_broker_shuts_down_not_at_its_grace(
    broker_factory: BrokerFactory,
) -> None:
    broker = broker_factory(grace=30)
    async with grpc.aio.insecure_channel(broker.address) as channel:
        stub = broker_service_pb2_grpc.BrokerServiceStub(channel)
        (task,) = await leased(stub, "idle-settle", 1)
        call = stub.SettleStream()
        await call.write(pb.SettleStreamRequest(id=1, ack=pb.AckRequest(
            worker_id="w1", items=[pb.AckItem(lease=ref(task))])))
        first = await call.read()
        assert first.id == 1 and first.HasField("ack")  # the handler is running
        assert broker.process is not None
        signalled = time.monotonic()
        broker.process.send_signal(signal.SIGTERM)
        ended = await refusal(call.read())
        assert ended.code == grpc.StatusCode.UNAVAILABLE
        answered = time.monotonic() - signalled
        exit_code = await asyncio.to_thread(broker.process.wait, 30)
    assert exit_code == 0
    assert answered < 3


async def test_messages_are_counted_in_the_metrics(broker_factory: BrokerFactory) -> None:
    from broker_process import stable_port
    from observability.scraping import scrape

    port = stable_port()
    broker = broker_factory(http_listen=f"127.0.0.1:{port}")
    async with grpc.aio.insecure_channel(broker.address) as channel:
        stub = broker_service_pb2_grpc.BrokerServiceStub(channel)
        *tasks, kept = await leased(stub, "counted-settle", 4)

        async def sent() -> Any:
            for n, task in enumerate(tasks):
                yield pb.SettleStreamRequest(id=n, ack=pb.AckRequest(
                    worker_id="w1", items=[pb.AckItem(lease=ref(task))]))
            yield pb.SettleStreamRequest(id=9, nack=pb.NackRequest(
                worker_id="w1", items=[pb.NackItem(lease=ref(kept, token="stale"))]))

        answers = [answer async for answer in stub.SettleStream(sent())]
        assert len(answers) == 4
        inspect = inspect_service_pb2_grpc.InspectServiceStub(channel)
        await inspect.GetQueueStats(ipb.GetQueueStatsRequest(queue="counted-settle"))
    scraped = await scrape(f"http://127.0.0.1:{port}/metrics")

    def messages(code: str) -> float:
        return scraped.total("leasq_rpc_stream_messages_total", method=METHOD_NAME, code=code)

    assert messages(code="OK") == 3
    assert messages(code="FAILED_PRECONDITION") == 1
    assert scraped.total("leasq_rpc_requests_total", method=METHOD_NAME, code="OK") == 1
