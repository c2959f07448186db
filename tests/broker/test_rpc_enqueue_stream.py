"""EnqueueStream: tasks one message at a time on one call, each answered under its own id."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import grpc
import grpc.aio
from broker_process import BrokerFactory
from rpc_testing import refusal, spec

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc, inspect_service_pb2_grpc, task_pb2
from leasq.v1 import inspect_service_pb2 as ipb

METHOD = "/leasq.v1.BrokerService/EnqueueStream"
METHOD_NAME = "EnqueueStream"


async def test_every_message_is_enqueued_or_refused_on_its_own_and_answered_under_its_id(
    broker_stub: Any, inspect_stub: Any
) -> None:
    requests = [pb.EnqueueStreamRequest(id=100 + n, task=spec(queue="streamed",
                                                              task_id=f"s-{n}"))
                for n in range(20)]  # fmt: skip
    requests += [
        pb.EnqueueStreamRequest(id=1, task=spec(queue="bad queue!")),
        pb.EnqueueStreamRequest(id=2),  # no task
        pb.EnqueueStreamRequest(id=3, task=spec(queue="streamed", task_id="s-0")),
        pb.EnqueueStreamRequest(id=4, task=spec(queue="streamed", payload=b"last")),
    ]

    async def sent() -> Any:
        for request in requests:  # all written before any answer is read: pipelined
            yield request

    call = broker_stub.EnqueueStream(sent())
    answers = {answer.id: answer async for answer in call}
    assert await call.code() == grpc.StatusCode.OK
    assert sorted(answers) == sorted(r.id for r in requests)
    for n in range(20):
        answer = answers[100 + n]
        assert not answer.HasField("error")
        assert (answer.task.id, answer.task.queue) == (f"s-{n}", "streamed")
        assert answer.task.state == task_pb2.TASK_STATE_PENDING
    assert (answers[1].error.code, answers[1].error.reason, answers[1].error.field) == (
        grpc.StatusCode.INVALID_ARGUMENT.value[0], "INVALID_FIELD", "task.queue")
    assert (answers[2].error.reason, answers[2].error.field) == ("INVALID_FIELD", "task")
    assert (answers[3].error.code, answers[3].error.reason) == (
        grpc.StatusCode.ALREADY_EXISTS.value[0], "TASK_ID_CONFLICT")
    last = await inspect_stub.GetTask(ipb.GetTaskRequest(queue="streamed",
                                                         task_id=answers[4].task.id))
    assert last.task.payload == b"last"
    stats = await inspect_stub.GetQueueStats(ipb.GetQueueStatsRequest(queue="streamed"))
    assert stats.stats.pending == 21


async def test_a_message_that_is_not_protobuf_ends_the_stream_after_the_earlier_are_answered(
    grpc_channel: grpc.aio.Channel, inspect_stub: Any
) -> None:
    raw = grpc_channel.stream_stream(METHOD)  # bytes in, bytes out
    good = pb.EnqueueStreamRequest(id=7, task=spec(queue="garbled", task_id="before"))

    async def sent() -> Any:
        yield good.SerializeToString()
        yield b"\xff\xff\xff"

    call = raw(sent())
    answers: list[pb.EnqueueStreamResponse] = []

    async def read_all() -> None:
        async for data in call:
            answers.append(pb.EnqueueStreamResponse.FromString(data))

    refused = await refusal(read_all())
    assert [(a.id, a.task.id) for a in answers] == [(7, "before")]
    assert (refused.code, refused.reason, refused.field) == (
        grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD", "request")
    await inspect_stub.GetTask(ipb.GetTaskRequest(queue="garbled", task_id="before"))


async def test_an_idle_stream_ends_unavailable_when_the_broker_shuts_down_not_at_its_grace(
    broker_factory: BrokerFactory,
) -> None:
    broker = broker_factory(grace=30)
    async with grpc.aio.insecure_channel(broker.address) as channel:
        stub = broker_service_pb2_grpc.BrokerServiceStub(channel)
        call = stub.EnqueueStream()
        await call.write(pb.EnqueueStreamRequest(id=1, task=spec(queue="idle-stream")))
        first = await call.read()
        assert first.id == 1 and not first.HasField("error")  # the handler is running
        assert broker.process is not None
        signalled = time.monotonic()
        broker.process.send_signal(signal.SIGTERM)
        ended = await refusal(call.read())
        assert ended.code == grpc.StatusCode.UNAVAILABLE
        assert "shutting down" in ended.message
        answered = time.monotonic() - signalled
        exit_code = await asyncio.to_thread(broker.process.wait, 30)
        exited = time.monotonic() - signalled
    assert exit_code == 0
    assert answered < 3 and exited < 5


async def test_messages_and_streams_are_counted_in_the_metrics(
    broker_factory: BrokerFactory,
) -> None:
    from broker_process import stable_port
    from observability.scraping import scrape

    port = stable_port()
    broker = broker_factory(http_listen=f"127.0.0.1:{port}")
    async with grpc.aio.insecure_channel(broker.address) as channel:
        stub = broker_service_pb2_grpc.BrokerServiceStub(channel)

        async def sent() -> Any:
            for n in range(5):
                yield pb.EnqueueStreamRequest(id=n, task=spec(queue="counted"))
            yield pb.EnqueueStreamRequest(id=9, task=spec(queue="-bad"))

        answers = [answer async for answer in stub.EnqueueStream(sent())]
        assert len(answers) == 6
        inspect = inspect_service_pb2_grpc.InspectServiceStub(channel)
        await inspect.GetQueueStats(ipb.GetQueueStatsRequest(queue="counted"))
    scraped = await scrape(f"http://127.0.0.1:{port}/metrics")

    def messages(code: str) -> float:
        return scraped.total("leasq_rpc_stream_messages_total", method=METHOD_NAME, code=code)

    assert messages(code="OK") == 5
    assert messages(code="INVALID_ARGUMENT") == 1
    assert scraped.total("leasq_rpc_requests_total", method=METHOD_NAME, code="OK") == 1
