"""SearchTasks on a real broker: each criterion, paging across the 10,000-examined bound, and
refusals."""

from __future__ import annotations

import grpc
import pytest
from operations_testing import archived, enqueue
from rpc_testing import refusal

from leasq.v1 import broker_service_pb2_grpc as pb_grpc
from leasq.v1 import inspect_service_pb2 as ipb
from leasq.v1 import inspect_service_pb2_grpc as ipb_grpc
from leasq.v1 import task_pb2
from leasq_sdk import AsyncClient, Client, InvalidArgument, TaskState


async def test_each_criterion_finds_its_tasks_oldest_first(
    aclient: AsyncClient, broker_stub: pb_grpc.BrokerServiceStub
) -> None:
    failed = await archived(aclient, broker_stub, "s", 2, "SMTPError", prefix="dead-")
    await enqueue(aclient, "s", 3, "email:send", b'{"user":"alice"}', prefix="order-")
    await enqueue(aclient, "s", 2, "sms:send", b'{"user":"bob"}', prefix="invoice-")

    by_prefix = await aclient.search_tasks("s", "pending", id_prefix="order-")
    assert [t.id for t in by_prefix.tasks] == ["order-0", "order-1", "order-2"]
    assert (by_prefix.next_page_token, by_prefix.examined) == ("", 5)
    by_type = await aclient.search_tasks("s", TaskState.PENDING, type="sms:send")
    assert [t.id for t in by_type.tasks] == ["invoice-0", "invoice-1"]
    by_payload = await aclient.search_tasks("s", "pending", payload_contains="bob")
    assert {t.id for t in by_payload.tasks} == {"invoice-0", "invoice-1"}
    by_bytes = await aclient.search_tasks("s", "pending", payload_contains=b'"alice"',
                                          type="email:send", id_prefix="order-1")
    assert [t.id for t in by_bytes.tasks] == ["order-1"]
    by_error = await aclient.search_tasks("s", "archived", error_type="SMTPError")
    assert {t.id for t in by_error.tasks} == set(failed)
    assert by_error.tasks[0].last_error_type == "SMTPError"
    none = await aclient.search_tasks("s", "archived", error_type="Other")
    assert (none.tasks, none.next_page_token, none.examined) == ([], "", 2)


def test_pages_of_matches_follow_each_other(client: Client) -> None:
    for n in range(25):
        client.enqueue("t:x", f"item-{n}".encode(), queue="pg", task_id=f"id-{n:02d}")
    first = client.search_tasks("pg", "pending", payload_contains="item-", page_size=10)
    assert len(first.tasks) == 10 and first.next_page_token
    assert [t.id for t in first.tasks] == [f"id-{n:02d}" for n in range(10)]
    found = [t.id for t in client.iter_search("pg", "pending", payload_contains="item-1",
                                               page_size=3)]
    assert found == ["id-01", *(f"id-{n}" for n in range(10, 20))]


async def test_a_call_examines_at_most_10000_tasks_and_paging_goes_on_after_them(
    aclient: AsyncClient
) -> None:
    await enqueue(aclient, "wide", 10_500, "t:other", prefix="n")
    await enqueue(aclient, "wide", 3, "t:needle", prefix="m")

    first = await aclient.search_tasks("wide", "pending", type="t:needle")
    assert (first.tasks, first.examined) == ([], 10_000)
    assert first.next_page_token
    second = await aclient.search_tasks("wide", "pending", type="t:needle",
                                        page_token=first.next_page_token)
    assert [t.id for t in second.tasks] == ["m0", "m1", "m2"]
    assert (second.examined, second.next_page_token) == (503, "")
    assert [t.id async for t in aclient.iter_search("wide", "pending",
                                                    type="t:needle")] == ["m0", "m1", "m2"]


async def test_search_over_sorted_states_pages_by_cursor_while_tasks_leave(
    aclient: AsyncClient
) -> None:
    await enqueue(aclient, "z", 30, process_in=3600, prefix="z")
    first = await aclient.search_tasks("z", "scheduled", id_prefix="z", page_size=10)
    # The page's last task leaves the index: the cursor goes on from its score.
    await aclient.delete("z", first.tasks[-1].id)
    rest = [t.id async for t in aclient.iter_search("z", "scheduled", id_prefix="z",
                                                    page_size=10)]
    second = await aclient.search_tasks("z", "scheduled", id_prefix="z", page_size=10,
                                        page_token=first.next_page_token)
    assert not {t.id for t in second.tasks} & {t.id for t in first.tasks}
    assert len(rest) == 29


BAD_SEARCHES: list[tuple[dict[str, object], str]] = [
    ({"state": task_pb2.TASK_STATE_PENDING}, "id_prefix"),
    ({"state": task_pb2.TASK_STATE_UNSPECIFIED, "type": "t"}, "state"),
    ({"state": task_pb2.TASK_STATE_AGGREGATING, "type": "t"}, "state"),
    ({"state": task_pb2.TASK_STATE_PENDING, "type": "t", "queue": "{q}"}, "queue"),
    ({"state": task_pb2.TASK_STATE_PENDING, "payload_contains": b"x" * 1025},
     "payload_contains"),
    ({"state": task_pb2.TASK_STATE_PENDING, "type": "x" * 300}, "type"),
    ({"state": task_pb2.TASK_STATE_PENDING, "error_type": "x" * 300}, "error_type"),
    ({"state": task_pb2.TASK_STATE_PENDING, "id_prefix": "x" * 200}, "id_prefix"),
    ({"state": task_pb2.TASK_STATE_PENDING, "type": "t", "page_size": 1001}, "page_size"),
    ({"state": task_pb2.TASK_STATE_PENDING, "type": "t", "page_token": "garbage"},
     "page_token"),
]


async def test_search_refuses_bad_fields_naming_them(
    inspect_stub: ipb_grpc.InspectServiceStub
) -> None:
    for fields, field in BAD_SEARCHES:
        request = ipb.SearchTasksRequest(**{"queue": "q", **fields})  # type: ignore[arg-type]
        denied = await refusal(inspect_stub.SearchTasks(request))
        assert (denied.code, denied.field) == (grpc.StatusCode.INVALID_ARGUMENT, field), fields


def test_a_token_of_another_state_is_refused(client: Client) -> None:
    for _ in range(3):
        client.enqueue("t:x", b"", queue="tk")
    page = client.search_tasks("tk", "pending", type="t:x", page_size=1)
    with pytest.raises(InvalidArgument) as caught:
        client.search_tasks("tk", "scheduled", type="t:x", page_token=page.next_page_token)
    assert caught.value.field == "page_token"
