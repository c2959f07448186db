"""GetQueueHistory: the daily processed/failed counters the settle scripts keep, read back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
from operations_testing import ack, enqueue, lease, nack
from rpc_testing import refusal

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc as pb_grpc
from leasq.v1 import inspect_service_pb2 as ipb
from leasq.v1 import inspect_service_pb2_grpc as ipb_grpc
from leasq_sdk import AsyncClient, Client


async def test_history_counts_todays_acks_and_failures_and_zero_days_before(
    aclient: AsyncClient, broker_stub: pb_grpc.BrokerServiceStub
) -> None:
    await enqueue(aclient, "hist", 6)
    tasks = await lease(broker_stub, "hist", 6)
    await ack(broker_stub, tasks[:3])
    await nack(broker_stub, tasks[3:5], pb.NACK_ACTION_ARCHIVE, "Boom")
    await nack(broker_stub, tasks[5:], pb.NACK_ACTION_RETRY, "Flaky")

    history = await aclient.queue_history("hist")

    today = datetime.now(UTC).date()
    assert len(history.days) == 7
    assert history.days[0].date in (today, today - timedelta(days=1))  # a run across midnight
    assert [d.date for d in history.days] == [
        history.days[0].date - timedelta(days=n) for n in range(7)]
    assert (history.days[0].processed, history.days[0].failed) == (6, 3)
    assert all((d.processed, d.failed) == (0, 0) for d in history.days[1:])
    assert (history.processed_total, history.failed_total) == (6, 3)
    assert history.queue == "hist"


def test_history_of_90_days_and_of_an_unknown_queue_holds_zeros(client: Client) -> None:
    history = client.queue_history("never-used", days=90)
    assert len(history.days) == 90
    assert sum(d.processed + d.failed for d in history.days) == 0
    assert (history.processed_total, history.failed_total) == (0, 0)
    assert len(client.queue_history("never-used", days=1).days) == 1


async def test_history_refuses_days_out_of_range_and_bad_queue_names(
    inspect_stub: ipb_grpc.InspectServiceStub
) -> None:
    for days in (91, 1000):
        denied = await refusal(inspect_stub.GetQueueHistory(
            ipb.GetQueueHistoryRequest(queue="q", days=days)))
        assert (denied.code, denied.field) == (grpc.StatusCode.INVALID_ARGUMENT, "days")
        assert "between 1 and 90" in denied.message
    denied = await refusal(inspect_stub.GetQueueHistory(ipb.GetQueueHistoryRequest(queue="{x}")))
    assert (denied.code, denied.field) == (grpc.StatusCode.INVALID_ARGUMENT, "queue")
