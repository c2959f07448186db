"""Between the group and queue-settings messages of InspectService and the groups domain."""

from __future__ import annotations

from leasq.v1 import inspect_service_pb2 as pb
from leasq.v1 import task_pb2
from leasq_broker.edge.converters import duration_ms, set_ms
from leasq_broker.errors import InvalidField
from leasq_broker.groups.models import Flushed, GroupSettings, GroupView, SettingsUpdate
from leasq_broker.groups.service import GroupRef, group_ref

_PATHS = {"groups.grace_period": "grace_ms", "groups.max_delay": "max_delay_ms",
          "groups.max_size": "max_size"}


def settings_message(settings: GroupSettings) -> pb.QueueSettings:
    message = pb.QueueSettings()
    groups = message.groups
    set_ms(groups.grace_period, settings.grace_ms)
    set_ms(groups.max_delay, settings.max_delay_ms)
    groups.max_size = settings.max_size
    return message


def settings_update(request: pb.UpdateQueueSettingsRequest) -> SettingsUpdate:
    """The changes an UpdateQueueSettings asks for: the named fields (a named field left unset
    returns to its default), or every set field when the mask is empty."""
    groups = request.settings.groups
    set_fields = {
        "grace_ms": groups.HasField("grace_period"), "max_delay_ms": groups.HasField("max_delay"),
        "max_size": groups.max_size != 0,
    }
    if request.HasField("update_mask") and request.update_mask.paths:
        named: set[str] = set()
        for i, path in enumerate(request.update_mask.paths):
            if path in ("groups", "*"):
                named.update(_PATHS.values())
            elif path in _PATHS:
                named.add(_PATHS[path])
            else:
                raise InvalidField(f"update_mask.paths[{i}]", f"unknown path {path[:100]!r}; "
                                   f"use groups or one of {', '.join(sorted(_PATHS))}")
    else:
        named = {name for name, is_set in set_fields.items() if is_set}
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
