"""Wires one broker process: store, domain services, background loops and servicers."""

from __future__ import annotations

from redis.asyncio import Redis

from leasq.v1 import broker_service_pb2_grpc, inspect_service_pb2_grpc
from leasq_broker.config import BrokerConfig


class BrokerApp:
    """Owns everything that lives between the gRPC server and Redis.

    The server module builds it with a connected ``Redis`` client, registers
    ``broker_servicer`` and ``inspect_servicer``, calls :meth:`start` before serving and
    :meth:`stop` after the server has drained.
    """

    broker_servicer: broker_service_pb2_grpc.BrokerServiceServicer
    inspect_servicer: inspect_service_pb2_grpc.InspectServiceServicer

    def __init__(self, config: BrokerConfig, redis: Redis) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        """Load scripts, sync the clock with Redis, start the notifier and background loops."""
        raise NotImplementedError

    async def stop(self) -> None:
        """Stop background loops and the notifier; the caller closes Redis."""
        raise NotImplementedError
