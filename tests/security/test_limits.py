"""Per-connection limits: message size, and keepalive pings more often than the broker allows."""

from __future__ import annotations

import time

import grpc
import grpc.aio
from broker_process import BrokerFactory
from google.protobuf.duration_pb2 import Duration
from rpc_testing import lease_request, spec

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc

KIB = 1024


async def test_a_message_over_max_message_bytes_is_refused_and_a_smaller_one_accepted(
    broker_factory: BrokerFactory,
) -> None:
    broker = broker_factory(max_message_bytes=64 * KIB)
    async with grpc.aio.insecure_channel(broker.address) as channel:
        stub = broker_service_pb2_grpc.BrokerServiceStub(channel)
        await stub.Enqueue(pb.EnqueueRequest(task=spec(payload=b"x" * 32 * KIB)), timeout=5)
        try:
            await stub.Enqueue(pb.EnqueueRequest(task=spec(payload=b"x" * 100 * KIB)), timeout=5)
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        else:
            raise AssertionError("a 100 KiB message passed a 64 KiB limit")
    assert '"max_message_bytes": 65536' in broker.log_text()


async def test_a_client_pinging_every_second_is_disconnected_during_a_long_poll(
    broker_factory: BrokerFactory,
) -> None:
    broker = broker_factory()
    pinging = [
        ("grpc.keepalive_time_ms", 1_000),
        ("grpc.keepalive_timeout_ms", 5_000),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.use_local_subchannel_pool", 1),
    ]
    async with grpc.aio.insecure_channel(broker.address, options=pinging) as channel:
        stub = broker_service_pb2_grpc.BrokerServiceStub(channel)
        started = time.monotonic()
        try:
            await stub.Lease(lease_request("limits-idle", wait=Duration(seconds=30)), timeout=40)
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.UNAVAILABLE, error
            assert "too many pings" in (error.details() or "").lower()
        else:
            raise AssertionError("the long poll ran its course despite a ping every second")
    # Cut off after a few strikes, well before the 30 s the long poll would have waited.
    assert time.monotonic() - started < 20
