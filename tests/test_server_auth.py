"""Bearer-token auth: every Leasq call needs the token; health and reflection stay open."""

from __future__ import annotations

from typing import Any

import grpc
import grpc.aio
import pytest
from broker_process import BrokerFactory, BrokerHandle
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from leasq.v1 import (
    broker_service_pb2,
    broker_service_pb2_grpc,
    inspect_service_pb2,
    inspect_service_pb2_grpc,
    task_pb2,
)
from leasq_broker.config import BrokerConfig
from leasq_broker.edge.interceptors import build_interceptors

TOKEN = "s3cret-token"


def _health_stub(channel: grpc.aio.Channel) -> Any:
    """The health stub, untyped: its published stubs describe the sync API only."""
    return health_pb2_grpc.HealthStub(channel)  # type: ignore[no-untyped-call, unused-ignore]


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info
    raise AssertionError(f"no ErrorInfo in {status}")


async def enqueue(broker: BrokerHandle, metadata: list[tuple[str, str]]) -> None:
    async with grpc.aio.insecure_channel(broker.address) as channel:
        stub = broker_service_pb2_grpc.BrokerServiceStub(channel)
        request = broker_service_pb2.EnqueueRequest(task=task_pb2.TaskSpec(type="email:welcome"))
        await stub.Enqueue(request, metadata=metadata, timeout=5)


@pytest.mark.parametrize(
    "metadata",
    [[], [("authorization", "Bearer wrong")], [("authorization", TOKEN)]],
    ids=["no token", "wrong token", "token without Bearer"],
)
async def test_a_call_without_the_right_bearer_token_is_refused_as_unauthenticated(
    broker_factory: BrokerFactory, metadata: list[tuple[str, str]]
) -> None:
    broker = broker_factory(auth_token=TOKEN)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await enqueue(broker, metadata)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    info = error_info(refused.value)
    assert (info.reason, info.domain) == ("UNAUTHENTICATED", "leasq.v1")


async def test_a_call_with_the_bearer_token_goes_through(broker_factory: BrokerFactory) -> None:
    broker = broker_factory(auth_token=TOKEN)
    await enqueue(broker, [("authorization", f"Bearer {TOKEN}")])
    async with grpc.aio.insecure_channel(broker.address) as channel:
        stats = await inspect_service_pb2_grpc.InspectServiceStub(channel).GetQueueStats(
            inspect_service_pb2.GetQueueStatsRequest(queue="default"),
            metadata=[("authorization", f"Bearer {TOKEN}"), ("x-request-id", "req-42")],
            timeout=5,
        )
    assert stats.stats.pending == 1


async def test_health_answers_without_a_token(broker_factory: BrokerFactory) -> None:
    broker = broker_factory(auth_token=TOKEN)
    async with grpc.aio.insecure_channel(broker.address) as channel:
        answer = await _health_stub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


async def test_the_token_can_come_from_the_leasq_auth_token_variable(
    broker_factory: BrokerFactory,
) -> None:
    broker = broker_factory(env={"LEASQ_AUTH_TOKEN": TOKEN})
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await enqueue(broker, [])
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    await enqueue(broker, [("authorization", f"Bearer {TOKEN}")])


async def test_debug_level_logs_each_call_with_its_request_id_and_code(
    broker_factory: BrokerFactory,
) -> None:
    broker = broker_factory(log_level="debug")
    await enqueue(broker, [("x-request-id", "trace-me-7")])
    assert await broker.stop_async() == 0
    lines = [line for line in broker.log_text().splitlines() if "trace-me-7" in line]
    assert any(
        '"code": "OK"' in line and "/leasq.v1.BrokerService/Enqueue" in line for line in lines
    ), lines


def test_no_interceptor_runs_on_the_fast_path_of_info_level_without_auth() -> None:
    assert build_interceptors(BrokerConfig()) == []
    assert build_interceptors(BrokerConfig(log_level="warning")) == []
    assert len(build_interceptors(BrokerConfig(log_level="debug"))) == 1
    assert len(build_interceptors(BrokerConfig(auth_token=TOKEN))) == 1
