"""The ceiling of any one-RPC-per-task API on this machine: a bare grpc.aio unary call.

A health-check server (no work per call) in one process, a client with 64 calls in flight in
another, as Leasq's producer and broker are. No Python broker that answers one gRPC call per
task can enqueue faster than this, whatever it does per task.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Awaitable, Callable
from multiprocessing.queues import Queue

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from peers import base as peer_base


def _serve(ports: Queue[int]) -> None:
    async def main() -> None:
        server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(health_aio.HealthServicer(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        ports.put(port)
        await server.wait_for_termination()

    asyncio.run(main())


async def calls_per_second(call: Callable[[], Awaitable[object]], n: int, in_flight: int) -> float:
    """``n`` awaits of ``call()``, ``in_flight`` at a time: calls per second."""
    started = time.perf_counter()
    await peer_base.in_flight(n, call, in_flight)
    return n / (time.perf_counter() - started)


async def _calls(port: int, calls: int, in_flight: int) -> float:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest()
        await stub.Check(request)
        return await calls_per_second(lambda: stub.Check(request), calls, in_flight)


def unary_calls_per_second(calls: int = 10_000, in_flight: int = 64) -> float:
    ports: Queue[int] = multiprocessing.get_context("spawn").Queue()
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(ports,))
    server.start()
    try:
        return asyncio.run(_calls(ports.get(timeout=30), calls, in_flight))
    finally:
        server.kill()
        server.join()


if __name__ == "__main__":
    print(f"{unary_calls_per_second():,.0f} unary calls/s")
