"""Queue settings and group aggregation through the SDK (sync and asyncio) on a real broker."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

import grpc
import pytest

from leasq_sdk import (
    DEFAULT,
    AsyncClient,
    Client,
    GroupNotFound,
    InvalidArgument,
    QueueSettings,
    TaskNotFound,
    TaskState,
)
from leasq_sdk.channel import IDEMPOTENT_METHODS
from leasq_sdk.errors import error_class
from leasq_sdk.groups import settings_update

HOUR = timedelta(hours=1)
DEFAULTS = (timedelta(seconds=5), timedelta(seconds=60), 100)
T = TypeVar("T")


@pytest.fixture
def queue() -> str:
    return f"g-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def held(client: Client, queue: str) -> str:
    """A queue whose groups are never flushed by time during a test."""
    client.update_queue_settings(queue, group_grace=HOUR, group_max_delay=HOUR)
    return queue


def _fill(client: Client, queue: str, sizes: dict[str, int], task_type: str = "digest"
          ) -> dict[str, list[str]]:
    """Enqueue ``size`` members into each group; their ids per group, in joining order."""
    return {
        group: [client.enqueue(task_type, {"group": group, "n": n}, queue=queue,
                               group=group).id for n in range(size)]
        for group, size in sizes.items()
    }  # fmt: skip


def _triple(settings: QueueSettings) -> tuple[timedelta, timedelta, int]:
    groups = settings.groups
    return groups.grace_period, groups.max_delay, groups.max_size


def _eventually(read: Callable[[], T], done: Callable[[T], bool], within: float = 10.0) -> T:
    """``read()`` until ``done`` holds of its value (a flush may be the broker loop's work)."""
    end = time.monotonic() + within
    while True:
        value = read()
        if done(value) or time.monotonic() > end:
            return value
        time.sleep(0.02)


# -- settings -------------------------------------------------------------------------------


def test_a_queue_without_settings_reads_the_defaults(client: Client, queue: str) -> None:
    settings = client.queue_settings(queue)
    assert settings.queue == queue
    assert _triple(settings) == DEFAULTS


def test_an_update_changes_only_the_settings_given_and_default_resets_one(
    client: Client, queue: str
) -> None:
    updated = client.update_queue_settings(queue, group_grace=timedelta(milliseconds=250))
    assert _triple(updated) == (timedelta(milliseconds=250), *DEFAULTS[1:])
    updated = client.update_queue_settings(queue, group_max_delay=120, group_max_size=7)
    assert _triple(updated) == (timedelta(milliseconds=250), timedelta(seconds=120), 7)
    assert _triple(client.queue_settings(queue)) == _triple(updated)

    reset = client.update_queue_settings(queue, group_grace=DEFAULT, group_max_size=DEFAULT)
    assert _triple(reset) == (DEFAULTS[0], timedelta(seconds=120), DEFAULTS[2])
    assert _triple(client.queue_settings(queue)) == _triple(reset)


@pytest.mark.parametrize(
    ("setting", "value", "field"),
    [
        ("group_grace", timedelta(milliseconds=5), "grace_period"),
        ("group_grace", timedelta(hours=25), "grace_period"),
        ("group_max_delay", timedelta(days=8), "max_delay"),
        ("group_max_size", 10_001, "max_size"),
    ],
)
def test_a_setting_out_of_range_is_refused_and_names_its_field(
    client: Client, queue: str, setting: str, value: object, field: str
) -> None:
    with pytest.raises(InvalidArgument) as refused:
        client.update_queue_settings(queue, **{setting: value})  # type: ignore[arg-type]
    assert refused.value.field.endswith(field), refused.value.field
    assert _triple(client.queue_settings(queue)) == DEFAULTS


def test_settings_of_the_wrong_type_or_none_at_all_are_refused_before_any_call(
    client: Client, queue: str
) -> None:
    with pytest.raises(TypeError):
        client.update_queue_settings(queue)
    with pytest.raises(TypeError):
        client.update_queue_settings(queue, group_max_size="5")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        client.update_queue_settings(queue, group_grace="5s")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        client.update_queue_settings(queue, group_max_size=-1)


def test_an_invalid_queue_name_is_refused(client: Client) -> None:
    with pytest.raises(InvalidArgument):
        client.queue_settings("no{braces}")


# -- groups ---------------------------------------------------------------------------------


def test_a_grouped_enqueue_waits_aggregating(client: Client, held: str) -> None:
    info = client.enqueue("digest", {"n": 1}, queue=held, group="user:1")
    assert info.state is TaskState.AGGREGATING
    stored = client.get_task(held, info.id)
    assert (stored.state, stored.group, stored.members) == (TaskState.AGGREGATING, "user:1", ())
    assert client.queue_stats(held).aggregating == 1


def test_groups_are_listed_largest_first_and_page_by_page(client: Client, held: str) -> None:
    _fill(client, held, {"small": 1, "large": 3, "middle": 2})
    page = client.list_groups(held)
    assert [(g.group, g.size) for g in page.groups] == [("large", 3), ("middle", 2), ("small", 1)]
    assert (page.total_size, page.next_page_token) == (3, "")
    large = page.groups[0]
    assert (large.queue, large.type) == (held, "digest")
    assert large.first_joined_at is not None and large.last_joined_at is not None
    assert large.first_joined_at <= large.last_joined_at
    assert large.flush_at is not None and large.flush_at > large.last_joined_at

    first = client.list_groups(held, page_size=2)
    assert len(first.groups) == 2 and first.next_page_token
    assert [g.group for g in client.iter_groups(held, page_size=1)] == ["large", "middle", "small"]


def test_group_members_come_in_joining_order_page_by_page(client: Client, held: str) -> None:
    ids = _fill(client, held, {"g": 5})["g"]
    page = client.group_members(held, "digest", "g", page_size=2)
    assert [t.id for t in page.tasks] == ids[:2]
    assert page.total_size == 5 and page.next_page_token
    assert all(t.state is TaskState.AGGREGATING and t.group == "g" for t in page.tasks)
    assert [t.id for t in client.iter_group_members(held, "digest", "g", page_size=2)] == ids


def test_a_flush_makes_one_pending_task_that_carries_every_member(
    client: Client, held: str
) -> None:
    ids = _fill(client, held, {"user:7": 3})["user:7"]
    flushed = client.flush_group(held, "digest", "user:7")
    assert (flushed.members, flushed.task.state, flushed.task.queue) == (
        3, TaskState.PENDING, held)
    task = client.get_task(held, flushed.task.id)
    assert (task.type, task.group, task.state) == ("digest", "user:7", TaskState.PENDING)
    assert [m.id for m in task.members] == ids
    assert [m.json() for m in task.members] == [{"group": "user:7", "n": n} for n in range(3)]
    assert all(m.headers["content-type"] == "application/json" for m in task.members)
    assert all(m.enqueued_at is not None for m in task.members)
    assert client.list_groups(held).groups == []
    stats = client.queue_stats(held)
    assert (stats.aggregating, stats.pending) == (0, 1)


def test_a_group_reaching_its_max_size_is_flushed_by_the_broker(
    client: Client, held: str
) -> None:
    client.update_queue_settings(held, group_max_size=3)
    _fill(client, held, {"g": 3})
    pending = _eventually(lambda: client.list_tasks(held, TaskState.PENDING).tasks,
                          lambda tasks: len(tasks) > 0)
    [task] = pending
    assert (task.group, len(task.members)) == ("g", 3)
    assert client.list_groups(held).total_size == 0


def test_groups_are_kept_apart_by_type_and_key(client: Client, held: str) -> None:
    a = _fill(client, held, {"k": 2}, task_type="digest:a")["k"]
    b = _fill(client, held, {"k": 1}, task_type="digest:b")["k"]
    assert sorted((g.type, g.size) for g in client.iter_groups(held)) == [
        ("digest:a", 2), ("digest:b", 1)]
    flushed = client.flush_group(held, "digest:b", "k")
    assert [m.id for m in client.get_task(held, flushed.task.id).members] == b
    assert [t.id for t in client.iter_group_members(held, "digest:a", "k")] == a


def test_delete_removes_a_group_with_its_members_and_reports_how_many(
    client: Client, held: str
) -> None:
    ids = _fill(client, held, {"g": 4})["g"]
    assert client.delete_group(held, "digest", "g") == 4
    assert client.list_groups(held).groups == []
    assert client.queue_stats(held).aggregating == 0
    assert client.group_members(held, "digest", "g").tasks == []
    with pytest.raises(GroupNotFound):
        client.flush_group(held, "digest", "g")
    for member in ids:
        with pytest.raises(TaskNotFound):
            client.get_task(held, member)


def test_an_unknown_or_flushed_group_is_group_not_found(client: Client, held: str) -> None:
    with pytest.raises(GroupNotFound) as unknown:
        client.flush_group(held, "digest", "nobody")
    assert unknown.value.reason == "GROUP_NOT_FOUND"
    with pytest.raises(GroupNotFound):
        client.delete_group(held, "digest", "nobody")
    _fill(client, held, {"once": 1})
    client.flush_group(held, "digest", "once")
    with pytest.raises(GroupNotFound):
        client.flush_group(held, "digest", "once")


def test_group_refs_are_validated(client: Client, held: str) -> None:
    with pytest.raises(InvalidArgument):
        client.flush_group(held, "", "g")
    with pytest.raises(InvalidArgument):
        client.delete_group(held, "digest", "")


def test_only_the_settings_given_are_named_in_the_update_mask_and_default_leaves_one_unset(
) -> None:
    request = settings_update("q", group_grace=timedelta(seconds=2), group_max_delay=None,
                              group_max_size=DEFAULT)
    assert list(request.update_mask.paths) == ["groups.grace_period", "groups.max_size"]
    groups = request.settings.groups
    assert (groups.grace_period.seconds, groups.HasField("max_delay"), groups.max_size) == (
        2, False, 0)


def test_group_not_found_is_told_apart_from_other_not_found_refusals_by_its_reason() -> None:
    assert error_class(grpc.StatusCode.NOT_FOUND, "GROUP_NOT_FOUND", "") is GroupNotFound
    assert error_class(grpc.StatusCode.NOT_FOUND, "TASK_NOT_FOUND", "") is TaskNotFound


def test_reads_and_settings_updates_are_retried_but_flush_and_delete_are_not() -> None:
    service = "leasq.v1.InspectService/"
    for method in ("GetQueueSettings", "UpdateQueueSettings", "ListGroups", "ListGroupMembers"):
        assert service + method in IDEMPOTENT_METHODS
    for method in ("FlushGroup", "DeleteGroup"):
        assert service + method not in IDEMPOTENT_METHODS


# -- asyncio client -------------------------------------------------------------------------


async def test_the_async_client_reads_and_updates_settings(
    aclient: AsyncClient, queue: str
) -> None:
    assert _triple(await aclient.queue_settings(queue)) == DEFAULTS
    updated = await aclient.update_queue_settings(queue, group_grace=1.5, group_max_size=9)
    assert _triple(updated) == (timedelta(seconds=1.5), DEFAULTS[1], 9)
    reset = await aclient.update_queue_settings(queue, group_max_size=DEFAULT)
    assert _triple(reset) == (timedelta(seconds=1.5), *DEFAULTS[1:])
    with pytest.raises(InvalidArgument):
        await aclient.update_queue_settings(queue, group_max_delay=0.001)


async def test_the_async_client_lists_flushes_and_deletes_groups(
    aclient: AsyncClient, queue: str
) -> None:
    await aclient.update_queue_settings(queue, group_grace=HOUR, group_max_delay=HOUR)
    ids = {
        group: [(await aclient.enqueue("digest", {"n": n}, queue=queue, group=group)).id
                for n in range(size)]
        for group, size in (("big", 3), ("small", 1))
    }  # fmt: skip
    page = await aclient.list_groups(queue)
    assert [(g.group, g.size) for g in page.groups] == [("big", 3), ("small", 1)]
    assert [g.group async for g in aclient.iter_groups(queue, page_size=1)] == ["big", "small"]
    members = await aclient.group_members(queue, "digest", "big", page_size=2)
    assert [t.id for t in members.tasks] == ids["big"][:2] and members.total_size == 3
    every = [t.id async for t in aclient.iter_group_members(queue, "digest", "big", page_size=2)]
    assert every == ids["big"]

    flushed = await aclient.flush_group(queue, "digest", "big")
    assert flushed.members == 3
    task = await aclient.get_task(queue, flushed.task.id)
    assert [m.id for m in task.members] == ids["big"]
    assert await aclient.delete_group(queue, "digest", "small") == 1
    with pytest.raises(GroupNotFound):
        await aclient.flush_group(queue, "digest", "big")
    with pytest.raises(GroupNotFound):
        await aclient.delete_group(queue, "digest", "small")
