"""The SDK side of the operator calls, without a broker: what is retried, how requests are
built from the methods' arguments."""

from __future__ import annotations

from datetime import timedelta

import pytest

from leasq.v1 import task_pb2
from leasq_sdk.channel import IDEMPOTENT_METHODS
from leasq_sdk.operations import bulk_request, search_request

INSPECT = "leasq.v1.InspectService/"


def test_reads_are_retried_and_bulk_moves_and_queue_deletion_are_not() -> None:
    for name in ("GetQueueHistory", "SearchTasks", "GetServerInfo", "ListQueues"):
        assert INSPECT + name in IDEMPOTENT_METHODS
    for name in ("RunAllTasks", "ArchiveAllTasks", "DeleteAllTasks", "DeleteQueue"):
        assert INSPECT + name not in IDEMPOTENT_METHODS


@pytest.mark.parametrize("older_than", [90, 90.0, timedelta(seconds=90)])
def test_bulk_requests_carry_the_state_and_only_the_given_filter_fields(
    older_than: float | timedelta
) -> None:
    request = bulk_request("archive", "q", "PENDING", type="t:x", error_type=None,
                           older_than=older_than)
    assert (request.queue, request.state) == ("q", task_pb2.TASK_STATE_PENDING)
    assert (request.filter.type, request.filter.error_type) == ("t:x", "")
    assert request.filter.older_than.seconds == 90
    plain = bulk_request("run", "q", "archived", type=None, error_type=None, older_than=None)
    assert not plain.filter.HasField("older_than") and not plain.filter.type


def test_a_text_needle_is_searched_for_as_utf8() -> None:
    request = search_request("q", "retry", id_prefix="", type="", payload_contains="café",
                             error_type="", page_size=10, page_token="")
    assert request.payload_contains == "café".encode()
    assert request.state == task_pb2.TASK_STATE_RETRY
