"""A worker's /metrics, scraped from a real ``leasq worker --metrics-listen`` process."""

from __future__ import annotations

import signal
import socket
import uuid

import grpc.aio
import redis.asyncio
from broker_process import BrokerHandle
from cli_worker import CliWorker
from observability.scraping import Scrape, scrape
from rpc_testing import spec
from waiting import eventually
from worker_testing import Events, WorkerProcess

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc


async def test_worker_metrics_count_attempts_and_read_busy_slots(
    broker: BrokerHandle, redis_client: redis.asyncio.Redis, redis_url: str
) -> None:
    queue = f"wq-{uuid.uuid4().hex[:8]}"
    events = Events(redis_client, f"obs-events:{uuid.uuid4().hex[:8]}")
    worker = await WorkerProcess.start(
        broker.address, queue, events, name="metrics", redis_url=redis_url,
        args=["--metrics-listen", "127.0.0.1:0", "--concurrency", "4"],
    )  # fmt: skip
    address = (await worker.wait_log("metrics serving"))["address"]
    url = f"http://{address}/metrics"
    idle = await scrape(url)

    async with grpc.aio.insecure_channel(broker.address) as channel:
        stub = broker_service_pb2_grpc.BrokerServiceStub(channel)
        for task_type in ("job", "job", "job", "no:handler", "wait:sync"):
            await stub.Enqueue(pb.EnqueueRequest(task=spec(task_type, queue=queue)))

    def count(scraped: Scrape, task_type: str, outcome: str) -> float | None:
        return scraped.value("leasq_worker_tasks_total", type=task_type, outcome=outcome)

    async def running() -> Scrape | None:
        scraped = await scrape(url)
        done = (count(scraped, "job", "succeeded") == 3
                and (count(scraped, "no:handler", "released") or 0) >= 1)  # fmt: skip
        return scraped if done and scraped.value("leasq_worker_slots_busy") == 1 else None

    busy = await eventually(running, 15.0, "three jobs done, one released, wait:sync running")
    await events.release(1)

    async def finished() -> Scrape | None:
        scraped = await scrape(url)
        done = count(scraped, "wait:sync", "succeeded") == 1
        return scraped if done and scraped.value("leasq_worker_slots_busy") == 0 else None

    idle_again = await eventually(finished, 15.0, "wait:sync done and its slot free")
    worker.send(signal.SIGTERM)
    assert await worker.wait() == 0

    assert idle.value("leasq_worker_slots_busy") == 0
    assert idle.value("leasq_worker_slots") == 4
    assert busy.value("leasq_worker_handler_duration_seconds_count", type="job") == 3
    assert count(busy, "wait:sync", "succeeded") is None
    assert idle_again.value("leasq_worker_handler_duration_seconds_count", type="wait:sync") == 1
    assert idle_again.value("leasq_worker_leases_lost_total") == 0


async def test_a_taken_metrics_address_stops_the_worker_with_exit_code_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        worker = await CliWorker.start("worker_apps.events:registry", [
            "--broker", "127.0.0.1:1", "--metrics-listen", f"127.0.0.1:{port}"])  # fmt: skip
        try:
            assert await worker.exit_code(within=30) == 1
        finally:
            await worker.kill()
    (record,) = [r for r in worker.logs if r.get("event") == "cannot serve metrics"]
    assert record["level"] == "error" and str(port) in record["error"]
    assert not any(r.get("event") == "worker started" for r in worker.logs)


async def test_a_malformed_metrics_address_is_a_usage_error() -> None:
    worker = await CliWorker.start("worker_apps.events:registry", [
        "--broker", "127.0.0.1:1", "--metrics-listen", "no-port"])  # fmt: skip
    try:
        assert await worker.exit_code(within=30) == 2
    finally:
        await worker.kill()
    assert any("expected HOST:PORT" in r.get("line", "") for r in worker.logs)
