"""Group aggregation as typed values, and their conversion to and from the contract.

A task enqueued with ``group="user:42"`` waits (state ``AGGREGATING``) in the group of its
queue, type and key until the group is flushed into ONE task of the same type that carries
every member (``TaskInfo.members``; a worker sees ``task.members``). A queue's
:class:`GroupSettings` decide when: once the group was quiet for ``grace_period``, once its
first member waited ``max_delay``, or once it holds ``max_size`` members::

    client.update_queue_settings("digests", group_grace=2, group_max_size=500)
    client.update_queue_settings("digests", group_max_delay=DEFAULT)   # back to the default
    for group in client.iter_groups("digests"):
        print(group.type, group.group, group.size, group.flush_at)
    client.flush_group("digests", "email:digest", "user:42")           # now, whatever the settings
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Literal, TypeAlias

from google.protobuf.field_mask_pb2 import FieldMask

from leasq.v1 import inspect_service_pb2 as pb
from leasq_sdk.convert import (
    Seconds,
    enqueued_task,
    from_duration,
    from_timestamp,
    task_info,
    to_duration,
)
from leasq_sdk.models import EnqueuedTask, TaskPage


class _Default(enum.Enum):
    DEFAULT = "DEFAULT"

    def __repr__(self) -> str:
        return "DEFAULT"

    __str__ = __repr__


#: Pass as a setting's value to return it to the broker's default, e.g.
#: ``update_queue_settings(queue, group_grace=DEFAULT)``.
DEFAULT: Final = _Default.DEFAULT

#: A setting's new value: the value, or :data:`DEFAULT`.
Setting: TypeAlias = Seconds | Literal[_Default.DEFAULT]
SizeSetting: TypeAlias = int | Literal[_Default.DEFAULT]


@dataclass(frozen=True, slots=True)
class GroupSettings:
    """When a queue's groups are flushed: at the first of the three (defaults filled in)."""

    #: Flush once no task joined the group for this long (default 5 s).
    grace_period: timedelta
    #: Flush at the latest this long after the group's first member joined (default 60 s).
    max_delay: timedelta
    #: Flush as soon as the group holds this many members (default 100).
    max_size: int


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``per_second`` leases per second from the queue, across every worker and broker,
    and at most ``burst`` at once after a quiet spell."""

    per_second: float
    burst: int


@dataclass(frozen=True, slots=True)
class QueueSettings:
    """A queue's settings as the broker applies them."""

    queue: str
    groups: GroupSettings
    #: None: no rate limit (the default).
    rate_limit: RateLimit | None = None
    #: At most this many tasks of the queue ACTIVE at once; 0: no limit (the default).
    max_active: int = 0
    #: At most this many tasks of one concurrency key ACTIVE at once (default 1).
    per_key_limit: int = 1


@dataclass(frozen=True, slots=True)
class GroupInfo:
    """One group of waiting (``AGGREGATING``) tasks."""

    queue: str
    type: str
    group: str
    #: Members waiting now.
    size: int
    first_joined_at: datetime | None
    last_joined_at: datetime | None
    #: When the group will be flushed if nothing else joins.
    flush_at: datetime | None


@dataclass(frozen=True, slots=True)
class GroupPage:
    """One page of :meth:`Client.list_groups`, largest groups first."""

    groups: list[GroupInfo] = field(default_factory=list)
    #: Pass to the next ``list_groups`` call; empty on the last page.
    next_page_token: str = ""
    #: Groups in the queue right now.
    total_size: int = 0


@dataclass(frozen=True, slots=True)
class FlushedGroup:
    """What :meth:`Client.flush_group` made: the new pending task and how many members it has."""

    task: EnqueuedTask
    members: int


# (keyword of update_queue_settings, mask path, field of GroupSettings)
_GROUP_FIELDS = (
    ("group_grace", "groups.grace_period", "grace_period"),
    ("group_max_delay", "groups.max_delay", "max_delay"),
    ("group_max_size", "groups.max_size", "max_size"),
)


#: A rate limit's new value: (per_second, burst) (burst 0: the default), per_second alone, or
#: :data:`DEFAULT` (no limit).
RateSetting: TypeAlias = tuple[float, int] | float | Literal[_Default.DEFAULT]


def settings_update(
    queue: str,
    *,
    group_grace: Setting | None,
    group_max_delay: Setting | None,
    group_max_size: SizeSetting | None,
    rate_limit: RateSetting | None = None,
    max_active: SizeSetting | None = None,
    per_key_limit: SizeSetting | None = None,
) -> pb.UpdateQueueSettingsRequest:
    """The UpdateQueueSettings request: only the given settings are named in the mask; a
    setting given as :data:`DEFAULT` is named but left unset, which resets it."""
    given = {"group_grace": group_grace, "group_max_delay": group_max_delay,
             "group_max_size": group_max_size}
    settings = pb.QueueSettings()
    flow_paths = _flow_update(settings, rate_limit, max_active, per_key_limit)
    groups = settings.groups
    paths: list[str] = []
    for keyword, path, name in _GROUP_FIELDS:
        value = given[keyword]
        if value is None:
            continue
        paths.append(path)
        if value is DEFAULT:
            continue
        if name == "max_size":
            groups.max_size = _size(value)
        else:
            getattr(groups, name).CopyFrom(to_duration(_span(keyword, value)))
    paths += flow_paths
    if not paths:
        raise TypeError("update_queue_settings needs at least one setting to change")
    return pb.UpdateQueueSettingsRequest(
        queue=queue, settings=settings, update_mask=FieldMask(paths=paths)
    )


def _flow_update(settings: pb.QueueSettings, rate_limit: RateSetting | None,
                 max_active: SizeSetting | None, per_key_limit: SizeSetting | None
                 ) -> list[str]:
    """Fill the flow-control fields given; their mask paths."""
    paths = []
    if rate_limit is not None:
        paths.append("rate_limit")
        if rate_limit is not DEFAULT:
            per_second, burst = rate_limit if isinstance(rate_limit, tuple) else (rate_limit, 0)
            if isinstance(per_second, bool) or not isinstance(per_second, int | float):
                raise TypeError(f"rate_limit must be per_second, (per_second, burst) or "
                                f"DEFAULT, not {rate_limit!r}")
            settings.rate_limit.per_second = float(per_second)
            settings.rate_limit.burst = _size(burst, "rate_limit burst")
    for keyword, value, path in (("max_active", max_active, "max_active"),
                                 ("per_key_limit", per_key_limit,
                                  "concurrency_keys.per_key_limit")):
        if value is None:
            continue
        paths.append(path)
        if value is not DEFAULT:
            number = _size(value, keyword)
            if keyword == "max_active":
                settings.max_active = number
            else:
                settings.concurrency_keys.per_key_limit = number
    return paths


def _size(value: object, keyword: str = "group_max_size") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{keyword} must be an int or DEFAULT, not {value!r}")
    if value < 0:
        raise ValueError(f"{keyword} must not be negative, got {value}")
    return value


def _span(keyword: str, value: object) -> Seconds:
    if isinstance(value, bool) or not isinstance(value, int | float | timedelta):
        raise TypeError(f"{keyword} must be seconds, a timedelta or DEFAULT, not {value!r}")
    return value


def queue_settings(queue: str, message: pb.QueueSettings) -> QueueSettings:
    """The settings in force (the broker fills in every default)."""
    g = message.groups
    return QueueSettings(
        queue=queue,
        groups=GroupSettings(
            grace_period=from_duration(g.grace_period),
            max_delay=from_duration(g.max_delay),
            max_size=g.max_size,
        ),
        rate_limit=(RateLimit(message.rate_limit.per_second, message.rate_limit.burst)
                    if message.HasField("rate_limit") else None),
        max_active=message.max_active,
        per_key_limit=message.concurrency_keys.per_key_limit or 1,
    )


def group_info(message: pb.GroupInfo) -> GroupInfo:
    """One waiting group."""

    def instant(name: Literal["first_joined_at", "last_joined_at", "flush_at"]
                ) -> datetime | None:
        return from_timestamp(getattr(message, name)) if message.HasField(name) else None

    return GroupInfo(
        queue=message.queue, type=message.type, group=message.group, size=message.size,
        first_joined_at=instant("first_joined_at"), last_joined_at=instant("last_joined_at"),
        flush_at=instant("flush_at"),
    )


def group_page(message: pb.ListGroupsResponse) -> GroupPage:
    """One page of groups."""
    return GroupPage(groups=[group_info(g) for g in message.groups],
                     next_page_token=message.next_page_token, total_size=message.total_size)


def members_page(message: pb.ListGroupMembersResponse) -> TaskPage:
    """One page of a group's members (each a task in state AGGREGATING), oldest first."""
    return TaskPage(tasks=[task_info(t) for t in message.tasks],
                    next_page_token=message.next_page_token, total_size=message.total_size)


def flushed(message: pb.FlushGroupResponse) -> FlushedGroup:
    """The task a flushed group became."""
    return FlushedGroup(task=enqueued_task(message.task), members=message.members)


def group_ref(queue: str, type: str, group: str) -> pb.GroupRef:
    """Names one group: queue, task type and key."""
    return pb.GroupRef(queue=queue, type=type, group=group)
