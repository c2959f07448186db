"""gRPC health checking and reflection on a running broker."""

from __future__ import annotations

import signal
from typing import Any

import grpc.aio
from broker_process import BrokerFactory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICES = ("", "leasq.v1.BrokerService", "leasq.v1.InspectService", "leasq.v1.ScheduleService")


def _health_stub(channel: grpc.aio.Channel) -> Any:
    """The health stub, untyped: its published stubs describe the sync API only."""
    return health_pb2_grpc.HealthStub(channel)  # type: ignore[no-untyped-call, unused-ignore]


def _reflection_stub(channel: grpc.aio.Channel) -> Any:
    """The reflection stub, untyped: its published stubs describe the sync API only."""
    return reflection_pb2_grpc.ServerReflectionStub(channel)  # type: ignore[arg-type]


async def test_health_answers_serving_for_the_server_and_both_services(
    grpc_channel: grpc.aio.Channel,
) -> None:
    health = _health_stub(grpc_channel)
    for service in SERVICES:
        answer = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert answer.status == SERVING, service


async def test_health_turns_not_serving_as_soon_as_the_broker_is_told_to_stop(
    broker_factory: BrokerFactory,
) -> None:
    broker = broker_factory(grace=5)
    async with grpc.aio.insecure_channel(broker.address) as channel:
        watch = _health_stub(channel).Watch(
            health_pb2.HealthCheckRequest(service="leasq.v1.BrokerService"), timeout=20
        )
        first = await watch.read()
        assert isinstance(first, health_pb2.HealthCheckResponse)
        assert first.status == SERVING

        assert broker.process is not None
        broker.process.send_signal(signal.SIGTERM)
        second = await watch.read()
        assert isinstance(second, health_pb2.HealthCheckResponse)
        assert second.status == NOT_SERVING
        watch.cancel()
    assert await broker.stop_async() == 0


async def test_reflection_lists_both_leasq_services_and_health(
    grpc_channel: grpc.aio.Channel,
) -> None:
    reflection = _reflection_stub(grpc_channel)
    call = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
    )
    names: set[str] = set()
    async for answer in call:
        names |= {service.name for service in answer.list_services_response.service}
    assert {"leasq.v1.BrokerService", "leasq.v1.InspectService", "leasq.v1.ScheduleService",
            "grpc.health.v1.Health"} <= names


async def test_reflection_describes_the_broker_service_to_tools_like_grpcurl(
    grpc_channel: grpc.aio.Channel,
) -> None:
    reflection = _reflection_stub(grpc_channel)
    call = reflection.ServerReflectionInfo(
        iter(
            [
                reflection_pb2.ServerReflectionRequest(
                    file_containing_symbol="leasq.v1.BrokerService"
                )
            ]
        ),
        timeout=5,
    )
    answers = [answer async for answer in call]
    assert answers[0].file_descriptor_response.file_descriptor_proto
