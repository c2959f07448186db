"""The sync client against a real broker: enqueue options, batches and the Inspect calls."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from broker_process import BrokerHandle

from leasq_sdk import (
    Client,
    EnqueuedTask,
    InvalidTask,
    LeasqError,
    QueueNotFound,
    TaskDef,
    TaskIdConflict,
    TaskRequest,
    TaskState,
)


@pytest.fixture
def client(broker: BrokerHandle) -> Iterator[Client]:
    with Client(broker.address, timeout=5) as client:
        yield client


def test_enqueue_returns_the_id_queue_state_and_due_time(client: Client) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    info = client.enqueue("email:welcome", {"user": 1})
    assert info.queue == "default" and info.id
    assert info.state is TaskState.PENDING
    assert info.next_process_at.tzinfo is not None
    assert before <= info.next_process_at <= datetime.now(UTC) + timedelta(seconds=1)


def test_every_enqueue_option_round_trips_through_get_task(client: Client) -> None:
    deadline = datetime.now(UTC) + timedelta(hours=2)
    process_at = datetime.now(UTC) + timedelta(minutes=30)
    info = client.enqueue(
        "report:build", {"year": 2030}, queue="reports", max_retry=3, timeout=90,
        deadline=deadline, process_at=process_at, unique=timedelta(minutes=5),
        unique_key="report-2030", task_id="report-2030", retention=3600,
        headers={"tenant": "acme"},
    )  # fmt: skip
    assert (info.id, info.queue, info.state) == ("report-2030", "reports", TaskState.SCHEDULED)
    task = client.get_task("reports", "report-2030")
    assert (task.type, json.loads(task.payload)) == ("report:build", {"year": 2030})
    assert task.headers == {"tenant": "acme", "content-type": "application/json"}
    assert (task.max_retry, task.group, task.state) == (3, "", TaskState.SCHEDULED)
    assert task.timeout == timedelta(seconds=90)
    assert task.unique_ttl == timedelta(minutes=5)
    assert task.retention == timedelta(hours=1)
    assert task.deadline is not None and abs(task.deadline - deadline) < timedelta(seconds=1)
    assert task.next_process_at is not None
    assert abs(task.next_process_at - process_at) < timedelta(seconds=1)
    assert info.next_process_at == task.next_process_at


def test_process_in_schedules_the_task_that_far_ahead(client: Client) -> None:
    info = client.enqueue("later", b"", process_in=timedelta(minutes=10))
    assert info.state is TaskState.SCHEDULED
    expected = datetime.now(UTC) + timedelta(minutes=10)
    assert abs(info.next_process_at - expected) < timedelta(seconds=5)


def test_bytes_and_text_payloads_arrive_unchanged(client: Client) -> None:
    raw = client.enqueue("raw", b"\x00\xffbinary")
    text = client.enqueue("text", "grüße")
    assert client.get_task(raw.queue, raw.id).payload == b"\x00\xffbinary"
    assert client.get_task(text.queue, text.id).payload == "grüße".encode()
    assert client.get_task(text.queue, text.id).headers == {}


def test_enqueue_many_answers_each_task_in_order_with_info_or_error(client: Client) -> None:
    tasks = [
        TaskRequest("a", {"n": 1}, task_id="first"),
        TaskRequest("b", b"", queue="bad{queue}"),
        TaskRequest("c", b"", task_id="first"),
        TaskRequest("d", b"", max_retry=-1),
        TaskRequest("e", "ok", queue="other"),
    ]
    results = client.enqueue_many(tasks)
    assert len(results) == 5
    first, bad_queue, conflict, negative, last = results
    assert isinstance(first, EnqueuedTask) and first.id == "first"
    assert isinstance(bad_queue, InvalidTask) and bad_queue.field.endswith("queue")
    assert isinstance(conflict, TaskIdConflict)
    assert isinstance(negative, InvalidTask) and negative.field.endswith("max_retry")
    assert isinstance(last, EnqueuedTask) and last.queue == "other"
    assert client.get_task("other", last.id).payload == b"ok"


def test_enqueue_many_splits_more_than_a_thousand_tasks_into_several_calls(
    client: Client,
) -> None:
    results = client.enqueue_many(TaskRequest("bulk", b"", task_id=f"t{i}") for i in range(2_345))
    assert all(isinstance(r, EnqueuedTask) for r in results)
    assert [r.id for r in results if isinstance(r, EnqueuedTask)] == [f"t{i}" for i in range(2_345)]
    assert client.queue_stats("default").pending == 2_345


def test_enqueue_many_of_nothing_makes_no_call(client: Client) -> None:
    assert client.enqueue_many([]) == []


def test_a_task_def_enqueues_with_its_queue_and_defaults(client: Client) -> None:
    welcome = TaskDef("email:welcome", queue="email", max_retry=2, retention=60)
    info = welcome.enqueue(client, {"user": 5}, task_id="w-5")
    task = client.get_task("email", "w-5")
    assert info.queue == "email"
    assert (task.max_retry, task.retention) == (2, timedelta(seconds=60))
    assert welcome.decode(task.payload) == {"user": 5}


def test_list_tasks_pages_through_a_state_and_iter_tasks_sees_all(client: Client) -> None:
    for i in range(5):
        client.enqueue("page", b"", queue="paged", task_id=f"p{i}")
    page = client.list_tasks("paged", TaskState.PENDING, page_size=2)
    assert [t.id for t in page.tasks] == ["p0", "p1"]
    assert page.total_size == 5 and page.next_page_token
    second = client.list_tasks("paged", "pending", page_size=2, page_token=page.next_page_token)
    assert [t.id for t in second.tasks] == ["p2", "p3"]
    assert [t.id for t in client.iter_tasks("paged", "pending", page_size=2)] == [
        f"p{i}" for i in range(5)
    ]


def test_queues_can_be_listed_paused_and_resumed(client: Client) -> None:
    client.enqueue("x", b"", queue="alpha")
    client.enqueue("x", b"", queue="beta")
    client.pause("beta")
    queues = {q.queue: q.paused for q in client.list_queues()}
    assert queues == {"alpha": False, "beta": True}
    assert client.queue_stats("beta").paused
    client.resume("beta")
    assert not client.queue_stats("beta").paused


def test_pausing_a_queue_that_does_not_exist_raises_queue_not_found_and_creates_none(
    client: Client,
) -> None:
    client.enqueue("x", b"", queue="real")
    for call in (client.pause, client.resume):
        with pytest.raises(QueueNotFound) as refused:
            call("reel")
        assert refused.value.reason == "QUEUE_NOT_FOUND"
    assert [q.queue for q in client.list_queues()] == ["real"]


def test_queue_stats_count_tasks_per_state(client: Client) -> None:
    client.enqueue("x", b"", queue="counted")
    client.enqueue("x", b"", queue="counted", process_in=600)
    stats = client.queue_stats("counted")
    assert (stats.queue, stats.pending, stats.scheduled, stats.active) == ("counted", 1, 1, 0)
    assert stats.latency >= timedelta(0)


def test_every_refusal_is_a_leasq_error_with_code_reason_and_details(client: Client) -> None:
    client.enqueue("x", b"", task_id="same")
    with pytest.raises(LeasqError) as caught:
        client.enqueue("x", b"", task_id="same")
    error = caught.value
    assert error.code.name == "ALREADY_EXISTS"
    assert error.reason == "TASK_ID_CONFLICT"
    assert "same" in error.details
    assert str(error).startswith("TASK_ID_CONFLICT: ")


def test_operators_can_run_archive_and_delete_tasks(client: Client) -> None:
    from leasq_sdk import TaskNotFound, WrongState

    client.enqueue("x", b"", task_id="later", process_in=600)
    assert client.run("default", "later").state is TaskState.PENDING
    assert client.archive("default", "later").state is TaskState.ARCHIVED
    with pytest.raises(WrongState):
        client.archive("default", "later")
    client.delete("default", "later")
    with pytest.raises(TaskNotFound):
        client.get_task("default", "later")
