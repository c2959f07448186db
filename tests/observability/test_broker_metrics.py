"""The broker's /metrics, scraped from a real broker process started with --http-listen."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import grpc
import grpc.aio
from broker_process import BrokerFactory, BrokerHandle, stable_port
from google.protobuf.duration_pb2 import Duration
from observability.scraping import Scrape, scrape
from rpc_testing import lease_request, ref, refusal, spec
from waiting import eventually

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc, inspect_service_pb2_grpc
from leasq.v1 import inspect_service_pb2 as ipb
from leasq_broker.edge.tokens import hash_token

STATES = ("pending", "scheduled", "active", "retry", "archived", "completed", "aggregating")


@dataclass(frozen=True, slots=True)
class Served:
    """A broker with its HTTP port, and stubs on a channel to it."""

    broker: BrokerHandle
    metrics_url: str
    stub: broker_service_pb2_grpc.BrokerServiceStub
    inspect: inspect_service_pb2_grpc.InspectServiceStub

    @property
    def base_url(self) -> str:
        return self.metrics_url.removesuffix("/metrics")


@asynccontextmanager
async def served(broker_factory: BrokerFactory, **overrides: object) -> AsyncIterator[Served]:
    port = stable_port()
    broker = broker_factory(http_listen=f"127.0.0.1:{port}", **overrides)
    async with grpc.aio.insecure_channel(broker.address) as channel:
        yield Served(broker, f"http://127.0.0.1:{port}/metrics",
                     broker_service_pb2_grpc.BrokerServiceStub(channel),
                     inspect_service_pb2_grpc.InspectServiceStub(channel))  # fmt: skip


def queue_name() -> str:
    return f"mq-{uuid.uuid4().hex[:8]}"


async def test_queue_gauges_equal_get_queue_stats(broker_factory: BrokerFactory) -> None:
    queue, paused = queue_name(), queue_name()
    async with served(broker_factory) as s:
        for _ in range(6):
            await s.stub.Enqueue(pb.EnqueueRequest(task=spec(queue=queue)))
        await s.stub.Enqueue(pb.EnqueueRequest(task=spec(queue=queue,
                                                         process_in=Duration(seconds=3600))))
        leased = await s.stub.Lease(lease_request(queue, max_tasks=3,
                                                  lease_duration=Duration(seconds=600)))
        assert len(leased.tasks) == 3
        await s.stub.Ack(pb.AckRequest(worker_id="w1", items=[pb.AckItem(
            lease=ref(leased.tasks[0]))]))  # fmt: skip
        await s.stub.Nack(pb.NackRequest(worker_id="w1", items=[pb.NackItem(
            lease=ref(leased.tasks[1]), action=pb.NACK_ACTION_ARCHIVE, error="boom")]))
        await s.stub.Enqueue(pb.EnqueueRequest(task=spec(queue=paused)))
        await s.inspect.PauseQueue(ipb.PauseQueueRequest(queue=paused))

        stats = (await s.inspect.GetQueueStats(ipb.GetQueueStatsRequest(queue=queue))).stats
        scraped = await scrape(s.metrics_url)

    assert scraped.value("leasq_queue_stats_up") == 1.0
    for state in STATES:
        assert scraped.value("leasq_queue_tasks", queue=queue, state=state) == getattr(
            stats, state), state
    assert (stats.pending, stats.scheduled, stats.active, stats.archived) == (3, 1, 1, 1)
    assert scraped.value("leasq_queue_processed_total", queue=queue) == stats.processed_total == 2
    assert scraped.value("leasq_queue_failed_total", queue=queue) == stats.failed_total == 1
    latency = scraped.value("leasq_queue_latency_seconds", queue=queue)
    assert latency is not None and 0 < latency < 60
    assert scraped.value("leasq_queue_paused", queue=queue) == 0.0
    assert scraped.value("leasq_queue_paused", queue=paused) == 1.0
    assert scraped.value("leasq_queue_tasks", queue=paused, state="pending") == 1.0


async def test_queue_gauges_are_cached_for_a_second_and_then_read_again(
    broker_factory: BrokerFactory,
) -> None:
    queue = queue_name()
    async with served(broker_factory) as s:
        await s.stub.Enqueue(pb.EnqueueRequest(task=spec(queue=queue)))
        first = await scrape(s.metrics_url)
        await s.stub.Enqueue(pb.EnqueueRequest(task=spec(queue=queue)))

        async def two_pending() -> bool:
            scraped = await scrape(s.metrics_url)
            return scraped.value("leasq_queue_tasks", queue=queue, state="pending") == 2.0

        await eventually(two_pending, 3.0, "the second task shown after the snapshot's second")
    assert first.value("leasq_queue_tasks", queue=queue, state="pending") == 1.0


async def test_rpc_counters_count_calls_by_code(broker_factory: BrokerFactory) -> None:
    queue = queue_name()
    async with served(broker_factory) as s:
        for _ in range(3):
            await s.stub.Enqueue(pb.EnqueueRequest(task=spec(queue=queue)))
        refused = await refusal(s.stub.Enqueue(pb.EnqueueRequest(task=spec(task_type="",
                                                                           queue=queue))))
        missing = await refusal(s.inspect.GetTask(ipb.GetTaskRequest(queue=queue, task_id="nope")))
        scraped = await scrape(s.metrics_url)

    assert refused.code is grpc.StatusCode.INVALID_ARGUMENT
    assert missing.code is grpc.StatusCode.NOT_FOUND

    def calls(service: str, method: str, code: str) -> float | None:
        return scraped.value("leasq_rpc_requests_total", service=service, method=method,
                             code=code)  # fmt: skip

    assert calls("BrokerService", "Enqueue", "OK") == 3
    assert calls("BrokerService", "Enqueue", "INVALID_ARGUMENT") == 1
    assert calls("InspectService", "GetTask", "NOT_FOUND") == 1
    assert scraped.value("leasq_rpc_duration_seconds_count", service="BrokerService",
                         method="Enqueue") == 4  # fmt: skip
    assert scraped.value("leasq_enqueue_batch_size_sum", kind="coalesced") == 3
    redis_trips = scraped.value("leasq_redis_roundtrip_seconds_count", op="enqueue")
    assert redis_trips is not None and 1 <= redis_trips <= 3


async def test_leases_granted_and_reclaimed_after_an_expiry(broker_factory: BrokerFactory) -> None:
    queue = queue_name()
    async with served(broker_factory, lease_lost_cap=2) as s:
        await s.stub.Enqueue(pb.EnqueueRequest(task=spec(queue=queue)))
        first = await s.stub.Lease(lease_request(queue, lease_duration=Duration(seconds=1)))
        assert len(first.tasks) == 1

        async def reclaimed() -> Scrape | None:
            scraped = await scrape(s.metrics_url)
            if scraped.value("leasq_leases_reclaimed_total", queue=queue) == 1:
                return scraped
            return None

        after_expiry = await eventually(reclaimed, 5.0, "the expired lease counted as reclaimed")
        again = await s.stub.Lease(lease_request(queue, lease_duration=Duration(seconds=1)))
        assert len(again.tasks) == 1

        async def archived() -> Scrape | None:
            scraped = await scrape(s.metrics_url)  # the gauges may be up to 1 s old
            if (scraped.value("leasq_poison_tasks_archived_total", queue=queue) == 1
                    and scraped.value("leasq_queue_tasks", queue=queue, state="archived") == 1):
                return scraped
            return None

        final = await eventually(archived, 5.0, "the task archived at the lease-lost cap")

    assert after_expiry.value("leasq_leases_granted_total", queue=queue) == 1
    assert final.value("leasq_leases_granted_total", queue=queue) == 2
    assert final.value("leasq_leases_reclaimed_total", queue=queue) == 1
    lag = final.value("leasq_loop_lag_seconds_count", loop="reclaimer")
    assert lag is not None and lag >= 1


async def test_metrics_need_a_reader_token_when_tokens_are_configured(
    broker_factory: BrokerFactory, tmp_path: Path
) -> None:
    reader, producer = f"reader-{uuid.uuid4().hex}", f"producer-{uuid.uuid4().hex}"
    tokens = tmp_path / "tokens.toml"
    tokens.write_text("".join(
        f'[[token]]\nname = "{name}"\nsha256 = "{hash_token(secret)}"\nrole = "{name}"\n'
        for name, secret in (("reader", reader), ("producer", producer))))  # fmt: skip
    async with served(broker_factory, auth_tokens_file=tokens) as s:
        without = await scrape(s.metrics_url)
        wrong = await scrape(s.metrics_url, token="not-a-token")
        too_small = await scrape(s.metrics_url, token=producer)
        allowed = await scrape(s.metrics_url, token=reader)
        refused = await refusal(s.stub.Enqueue(pb.EnqueueRequest(task=spec(queue="q")),
                                               metadata=[("authorization", "Bearer nope")]))
        await s.stub.Enqueue(pb.EnqueueRequest(task=spec(queue="q")),
                             metadata=[("authorization", f"Bearer {producer}")])
        after = await scrape(s.metrics_url, token=reader)
        async with aiohttp.ClientSession() as session, \
                session.get(s.base_url + "/healthz") as health:  # open: probes have no token
            health_status = health.status

    assert (without.status, wrong.status, too_small.status) == (401, 401, 403)
    assert allowed.status == 200 and allowed.value("leasq_queue_stats_up") == 1.0
    assert health_status == 200
    assert refused.code is grpc.StatusCode.UNAUTHENTICATED
    assert after.value("leasq_rpc_requests_total", service="BrokerService", method="Enqueue",
                       code="UNAUTHENTICATED") == 1  # fmt: skip
    assert after.value("leasq_rpc_requests_total", service="BrokerService", method="Enqueue",
                       code="OK") == 1  # fmt: skip


def test_no_http_server_unless_asked(broker: BrokerHandle) -> None:
    log = broker.log_text()
    assert "broker serving" in log and "http serving" not in log
