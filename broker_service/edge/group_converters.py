"""Between the group and queue-settings messages of InspectService and the groups domain."""

from __future__ import annotations

from leasq.v1 import inspect_service_pb2 as pb
from leasq.v1 import task_pb2
from leasq_broker.edge.converters import duration_ms, set_ms
from leasq_broker.errors import InvalidField
from leasq_broker.groups.models import Flushed, GroupView, SettingsUpdate
from leasq_broker.groups.service import GroupRef, group_ref
from leasq_broker.settings.models import (
    FlowUpdate,
    QueueSettings,
    QueueSettingsUpdate,
    RateLimit,
)

_PATHS = {"groups.grace_period": "grace_ms", "groups.max_delay": "max_delay_ms",
          "groups.max_size": "max_size", "rate_limit": "rate_limit", "max_active": "max_active",
          "concurrency_keys.per_key_limit": "per_key_limit"}
# Paths that name several of the above.
_GROUP_PATHS = {"groups": ("grace_ms", "max_delay_ms", "max_size"),
                "concurrency_keys": ("per_key_limit",), "*": tuple(_PATHS.values())}


def settings_message(settings: QueueSettings) -> pb.QueueSettings:
    message = pb.QueueSettings()
    groups = message.groups
    set_ms(groups.grace_period, settings.groups.grace_ms)
    set_ms(groups.max_delay, settings.groups.max_delay_ms)
    groups.max_size = settings.groups.max_size
    flow = settings.flow
    if flow.rate_limit is not None:
        message.rate_limit.per_second = flow.rate_limit.per_second
        message.rate_limit.burst = flow.rate_limit.burst
    message.max_active = flow.max_active
    message.concurrency_keys.per_key_limit = flow.per_key_limit
    return message


def settings_update(request: pb.UpdateQueueSettingsRequest) -> QueueSettingsUpdate:
    """The changes an UpdateQueueSettings asks for: the named fields (a named field left unset
    returns to its default), or every set field when the mask is empty."""
    settings = request.settings
    groups = settings.groups
    set_fields = {
        "grace_ms": groups.HasField("grace_period"), "max_delay_ms": groups.HasField("max_delay"),
        "max_size": groups.max_size != 0, "rate_limit": settings.HasField("rate_limit"),
        "max_active": settings.max_active != 0,
        "per_key_limit": settings.concurrency_keys.per_key_limit != 0,
    }
    if request.HasField("update_mask") and request.update_mask.paths:
        named: set[str] = set()
        for i, path in enumerate(request.update_mask.paths):
            if path in _GROUP_PATHS:
                named.update(_GROUP_PATHS[path])
            elif path in _PATHS:
                named.add(_PATHS[path])
            else:
                raise InvalidField(f"update_mask.paths[{i}]", f"unknown path {path[:100]!r}; "
                                   f"use groups, concurrency_keys or one of "
                                   f"{', '.join(sorted(_PATHS))}")
    else:
        named = {name for name, is_set in set_fields.items() if is_set}
    return QueueSettingsUpdate(_group_update(request, named), _flow_update(request, named))


def _flow_update(request: pb.UpdateQueueSettingsRequest, named: set[str]) -> FlowUpdate:
    settings = request.settings
    rate = None
    if "rate_limit" in named and settings.HasField("rate_limit"):
        rate = RateLimit(settings.rate_limit.per_second, settings.rate_limit.burst)
    max_active = settings.max_active if "max_active" in named else None
    per_key = (settings.concurrency_keys.per_key_limit if "per_key_limit" in named else None)
    reset = frozenset(name for name in ("rate_limit", "max_active", "per_key_limit")
                      if name in named and not ((name == "rate_limit" and rate is not None)
                                                or (name == "max_active" and max_active)
                                                or (name == "per_key_limit" and per_key)))
    return FlowUpdate(rate, max_active or None, per_key or None, reset)


def _group_update(request: pb.UpdateQueueSettingsRequest, named: set[str]) -> SettingsUpdate:
    groups = request.settings.groups
    set_fields = {
        "grace_ms": groups.HasField("grace_period"), "max_delay_ms": groups.HasField("max_delay"),
        "max_size": groups.max_size != 0,
    }
    named = named & set(set_fields)
    field = "settings.groups"
    values: dict[str, int] = {}
    if "grace_ms" in named and set_fields["grace_ms"]:
        values["grace_ms"] = duration_ms(groups.grace_period, f"{field}.grace_period")
    if "max_delay_ms" in named and set_fields["max_delay_ms"]:
        values["max_delay_ms"] = duration_ms(groups.max_delay, f"{field}.max_delay")
    if "max_size" in named and set_fields["max_size"]:
        values["max_size"] = groups.max_size
    reset = frozenset(name for name in named if name not in values)
    return SettingsUpdate(**values, reset=reset)


def group_info(view: GroupView) -> pb.GroupInfo:
    info = pb.GroupInfo(queue=view.queue, type=view.type, group=view.group, size=view.size)
    set_ms(info.first_joined_at, view.first_joined_ms)
    set_ms(info.last_joined_at, view.last_joined_ms)
    set_ms(info.flush_at, view.flush_at_ms)
    return info


def ref(message: pb.GroupRef, present: bool) -> GroupRef:
    if not present:
        raise InvalidField("group", "is required")
    return group_ref(message.queue, message.type, message.group)


def flushed(result: Flushed) -> pb.FlushGroupResponse:
    response = pb.FlushGroupResponse(members=result.members)
    task = response.task
    task.id, task.queue = result.task_id, result.queue
    task.state = task_pb2.TASK_STATE_PENDING
    set_ms(task.next_process_at, result.at_ms)
    return response
