"""The broker's grace period on SIGTERM or SIGINT, with a call that cannot finish.

A call is held in flight by pausing Redis writes (``CLIENT PAUSE ... WRITE``): the broker sends
the Enqueue's script and waits. Then the broker is told to stop:

- new calls are refused at once (UNAVAILABLE, or CANCELLED when gRPC drops a call before its
  handler starts), and none of them runs (their task ids are absent afterwards);
- the listening port is free at once: a replacement broker serves on it during the grace;
- the held call is answered UNAVAILABLE when ``--grace`` ends, not before and not much after,
  and the broker exits 0;
- a second signal cuts the grace short.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
import redis.asyncio
from broker_process import (
    BrokerFactory,
    BrokerHandle,
    RedisProcess,
    broker_environment,
    overrides_to_flags,
)
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rpc_testing import spec

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc as pb_grpc
from leasq_broker.keys import Keys

QUEUE = "grace"
# Time a loaded machine may take to deliver a signal, answer a call or exit, beyond the bound
# the mechanism gives.
MARGIN = 1.5


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[redis.asyncio.Redis]:
    """A Redis of this test only (so that pausing it disturbs nobody), with a client on it."""
    server = RedisProcess(tmp_path)
    client = redis.asyncio.Redis.from_url(server.start())
    try:
        yield client
    finally:
        await client.execute_command("CLIENT", "UNPAUSE")
        await client.aclose()
        server.stop()


async def _hold_a_call(stub: Any, redis_client: redis.asyncio.Redis) -> Any:
    """An Enqueue that waits in Redis until writes are unpaused; returns once it waits."""
    await redis_client.execute_command("CLIENT", "PAUSE", "60000", "WRITE")
    call = stub.Enqueue(pb.EnqueueRequest(task=spec(queue=QUEUE, task_id="held")), timeout=60)
    give_up = time.monotonic() + 5
    while (await redis_client.info("clients"))["blocked_clients"] < 1:
        assert time.monotonic() < give_up, "the held Enqueue did not reach Redis within 5s"
        assert not call.done(), f"the held Enqueue ended: {await call.code()}"
        await asyncio.sleep(0.02)
    return call


def _port_is_free(address: str) -> bool:
    """Whether a new server could listen on ``address`` (as gRPC does: SO_REUSEADDR, so that
    connections still open on the port do not count, only a listening socket does)."""
    host, _, port = address.rpartition(":")
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, int(port)))
            probe.listen()
        except OSError:
            return False
    return True


async def _late_calls(stub: Any, count: int) -> list[grpc.StatusCode]:
    """Enqueues sent during the grace period (task ids late-0, late-1, ...): their codes."""
    codes = []
    for n in range(count):
        try:
            request = pb.EnqueueRequest(task=spec(queue=QUEUE, task_id=f"late-{n}"))
            await stub.Enqueue(request, timeout=2)
            codes.append(grpc.StatusCode.OK)
        except grpc.aio.AioRpcError as error:
            codes.append(error.code())
    return codes


async def _shutdown_begun(channel: grpc.aio.Channel) -> None:
    """Wait until health is no longer SERVING: the broker has begun its shutdown (a health
    check is neither gated nor writes, so it cannot be held up itself)."""
    health = health_pb2_grpc.HealthStub(channel)  # type: ignore[no-untyped-call, unused-ignore]
    give_up = time.monotonic() + 5
    while True:
        try:
            answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
        except grpc.aio.AioRpcError:
            return
        if answer.status != health_pb2.HealthCheckResponse.SERVING:
            return
        assert time.monotonic() < give_up, "still SERVING 5s after the signal"
        await asyncio.sleep(0.01)


async def _exit_code(broker: BrokerHandle, within: float) -> int:
    assert broker.process is not None
    return await asyncio.to_thread(broker.process.wait, within)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_during_the_grace_period_new_calls_are_refused_and_a_call_past_it_is_cut(
    broker_factory: BrokerFactory, own_redis: redis.asyncio.Redis, sig: signal.Signals
) -> None:
    grace = 2.0
    url = own_redis.connection_pool.connection_kwargs
    broker = broker_factory(redis_url=f"redis://{url['host']}:{url['port']}/0", grace=grace)
    async with grpc.aio.insecure_channel(broker.address) as channel:
        stub = pb_grpc.BrokerServiceStub(channel)
        held = await _hold_a_call(stub, own_redis)
        assert broker.process is not None
        signalled = time.monotonic()
        broker.process.send_signal(sig)

        await _shutdown_begun(channel)
        # Refused, never run: UNAVAILABLE from the shutdown gate, or CANCELLED when the gRPC
        # server dropped the call before any handler started (both retryable, see README).
        late = await _late_calls(stub, 3)
        assert set(late) <= {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}, late
        assert _port_is_free(broker.address), "the port is still bound during the grace period"
        assert not held.done(), "the held call ended before the grace period did"
        with pytest.raises(grpc.aio.AioRpcError) as cut:
            await held
        cut_after = time.monotonic() - signalled
        assert cut.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "grace period" in (cut.value.details() or "")
        assert grace - 0.1 <= cut_after <= grace + MARGIN
        assert await _exit_code(broker, within=10) == 0
        assert time.monotonic() - signalled <= grace + 2 * MARGIN

    await own_redis.execute_command("CLIENT", "UNPAUSE")
    late = [f"late-{n}" for n in range(3)]
    assert await own_redis.hmget(Keys().tasks(QUEUE), late) == [None] * 3, (
        "a call refused during the grace period ran")


@pytest.fixture
def replacement(redis_url: str, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[Callable[[str], BrokerHandle]]:  # fmt: skip
    """``replacement(address)``: start a broker listening on ``address`` (on the session
    Redis); stopped at teardown."""
    handles: list[BrokerHandle] = []

    def start(address: str) -> BrokerHandle:
        flags = overrides_to_flags({"redis_url": redis_url, "log_format": "json"})
        handle = BrokerHandle(flags, workdir=tmp_path_factory.mktemp("replacement"),
                              redis_url=redis_url, data_dir=None, env=broker_environment())
        handle.listen = address
        handles.append(handle)
        handle.start()
        return handle

    yield start
    for handle in handles:
        handle.stop()


async def test_a_replacement_serves_on_the_port_during_the_grace_and_a_second_signal_ends_it(
    broker_factory: BrokerFactory, own_redis: redis.asyncio.Redis,
    replacement: Callable[[str], BrokerHandle],
) -> None:  # fmt: skip
    grace = 30.0
    url = own_redis.connection_pool.connection_kwargs
    broker = broker_factory(redis_url=f"redis://{url['host']}:{url['port']}/0", grace=grace)
    async with grpc.aio.insecure_channel(broker.address) as channel:
        stub = pb_grpc.BrokerServiceStub(channel)
        held = await _hold_a_call(stub, own_redis)
        assert broker.process is not None
        broker.process.send_signal(signal.SIGTERM)
        await _shutdown_begun(channel)

        await asyncio.to_thread(replacement, broker.address)
        async with grpc.aio.insecure_channel(broker.address) as fresh:
            request = pb.EnqueueRequest(task=spec(queue=QUEUE, task_id="to-the-new-one"))
            await pb_grpc.BrokerServiceStub(fresh).Enqueue(request, timeout=5)
        assert broker.running and not held.done(), "the old broker is no longer in its grace"

        hurried = time.monotonic()
        broker.process.send_signal(signal.SIGTERM)
        with pytest.raises(grpc.aio.AioRpcError) as cut:
            try:
                await asyncio.wait_for(held, 2 * MARGIN)
            except TimeoutError:
                raise AssertionError("a second signal did not end the held call") from None
        assert cut.value.code() == grpc.StatusCode.UNAVAILABLE
        assert time.monotonic() - hurried <= MARGIN
        assert await _exit_code(broker, within=2 * MARGIN) == 0
