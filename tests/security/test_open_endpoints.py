"""On a broker that requires tokens, health and reflection stay open and Leasq calls do not;
the start-up line says which tokens are accepted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
from broker_process import BrokerFactory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from leasq.v1 import inspect_service_pb2, inspect_service_pb2_grpc


def _serving_line(log: str) -> dict[str, Any]:
    for line in log.splitlines():
        if line.startswith("{") and json.loads(line).get("event") == "broker serving":
            return dict(json.loads(line))
    raise AssertionError(f"no 'broker serving' line in:\n{log}")


async def test_health_and_reflection_answer_without_a_token_and_leasq_calls_do_not(
    broker_factory: BrokerFactory, tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens.toml"
    tokens.write_text("")
    broker = broker_factory(auth_token="admin-secret", auth_tokens_file=tokens)
    assert _serving_line(broker.log_text())["auth"] == "auth-token+tokens-file"
    async with grpc.aio.insecure_channel(broker.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)  # type: ignore[no-untyped-call, unused-ignore]
        answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)  # type: ignore[no-untyped-call, unused-ignore]
        call = reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
        names = {service.name async for answer in call
                 for service in answer.list_services_response.service}  # fmt: skip
        assert "leasq.v1.BrokerService" in names
        inspect = inspect_service_pb2_grpc.InspectServiceStub(channel)
        try:
            await inspect.ListQueues(inspect_service_pb2.ListQueuesRequest(), timeout=5)
        except grpc.aio.AioRpcError as refused:
            assert refused.code() == grpc.StatusCode.UNAUTHENTICATED
        else:
            raise AssertionError("a Leasq call without a token was answered")


def test_a_broker_without_tokens_says_auth_off(broker_factory: BrokerFactory) -> None:
    line = _serving_line(broker_factory().log_text())
    assert (line["auth"], line["transport"]) == ("off", "plaintext")
