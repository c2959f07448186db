"""The group scripts' calls, built from validated values (the enqueue path shares them)."""

from __future__ import annotations

from collections.abc import Sequence

from leasq_broker.groups.models import (
    DEFAULT_GRACE_MS,
    DEFAULT_MAX_DELAY_MS,
    DEFAULT_MAX_SIZE,
    MAX_FLUSH_BYTES,
)
from leasq_broker.keys import Keys
from leasq_broker.models import TaskRecord
from leasq_broker.scripts import ScriptArg, ScriptCall

FLUSH_DUE, FLUSH_NOW = "due", "now"


def join_call(keys: Keys, queue: str, records: Sequence[TaskRecord], now_ms: int,
              inline_flush_members: int) -> ScriptCall:
    """``group_join.lua`` for grouped records of one queue: one argument per task (its meta
    and GroupMember bytes), the flushed tasks' bases once per distinct base."""
    k = keys
    script_keys = [*_flush_keys(keys, queue), k.queue_settings(queue), k.tasks(queue),
                   k.envelopes(queue)]
    bases: dict[bytes, int] = {}
    tasks: list[ScriptArg] = []
    for r in records:
        script_keys += [k.group_members(queue, r.group_id), k.group_info(queue, r.group_id)]
        base = bases.setdefault(r.base, len(bases) + 1)
        tasks.append(f"{r.id}\t{r.group_id}\t{r.group}\t{r.max_retry}\t{r.retention_ms}"
                     f"\t{r.deadline_ms}\t{base}\t".encode() + r.member)
    args: list[ScriptArg] = [now_ms, k.notify_channel(), queue, len(records), DEFAULT_GRACE_MS,
                             DEFAULT_MAX_DELAY_MS, DEFAULT_MAX_SIZE, len(bases), MAX_FLUSH_BYTES,
                             inline_flush_members, *bases, *tasks]
    return ScriptCall("group_join", script_keys, args)


def flush_call(keys: Keys, queue: str, group_ids: Sequence[str], now_ms: int,
               mode: str) -> ScriptCall:
    """``group_flush.lua`` for some groups of one queue."""
    k = keys
    script_keys = [*_flush_keys(keys, queue), k.tasks(queue), k.envelopes(queue)]
    for gid in group_ids:
        script_keys += [k.group_members(queue, gid), k.group_info(queue, gid)]
    args: list[ScriptArg] = [now_ms, k.notify_channel(), queue, mode, *group_ids]
    return ScriptCall("group_flush", script_keys, args)


def _flush_keys(keys: Keys, queue: str) -> list[str]:
    """KEYS[1..6] of both scripts, as ``_group_flush.lua`` expects them."""
    return [keys.groups(queue), keys.group_due(queue), keys.aggregating(queue),
            keys.pending(queue), keys.waiting(queue), keys.group_times(queue)]


def delete_call(keys: Keys, queue: str, group_id: str) -> ScriptCall:
    k = keys
    return ScriptCall("group_delete",
                      [k.groups(queue), k.group_due(queue), k.aggregating(queue),
                       k.group_members(queue, group_id), k.group_info(queue, group_id),
                       k.group_times(queue), k.tasks(queue), k.envelopes(queue)],
                      [group_id])
