"""The groups use case: queue settings, the Inspect views of groups, flushes by hand and due.

Any replica may run :meth:`Groups.flush_due` at any time: each flush is a guarded transition
(``group_flush.lua`` flushes a group only while it is due), so replicas racing for the same
group flush it once.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass

from leasq_broker import validation as v
from leasq_broker.clock import Clock
from leasq_broker.errors import GroupNotFound, InvalidField
from leasq_broker.groups.calls import FLUSH_NOW
from leasq_broker.groups.models import (
    Flushed,
    GroupSettings,
    GroupView,
    SettingsUpdate,
    check_group_key,
    group_id,
)
from leasq_broker.groups.store import GroupStore
from leasq_broker.models import StoredTask
from leasq_broker.reader import TaskReader

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
DUE_BATCH = 500


@dataclass(frozen=True, slots=True)
class GroupRef:
    """One group, validated."""

    queue: str
    type: str
    group: str

    @property
    def id(self) -> str:
        return group_id(self.type, self.group)


@dataclass(frozen=True, slots=True)
class DuePass:
    """One aggregator pass: groups flushed, whether more is due at once, the next instant."""

    flushed: int
    more_due: bool
    next_due_ms: int | None


class Groups:
    """Groups of AGGREGATING tasks and the settings that flush them."""

    def __init__(self, store: GroupStore, reader: TaskReader, clock: Clock,
                 on_flushed: Callable[[str], None]) -> None:
        self._store = store
        self._reader = reader
        self._clock = clock
        self._on_flushed = on_flushed

    async def settings(self, queue: str) -> GroupSettings:
        return await self._store.settings(v.queue_name("queue", queue))

    async def update_settings(self, queue: str, update: SettingsUpdate) -> GroupSettings:
        v.queue_name("queue", queue)
        update.validate("settings.groups")
        return await self._store.update_settings(queue, update)

    async def page(self, queue: str, page_size: int, page_token: str
                   ) -> tuple[list[GroupView], str, int]:
        v.queue_name("queue", queue)
        size = v.in_range("page_size", page_size or DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
        offset = decode_token(page_token, "groups")
        views, total = await self._store.page(queue, offset, size)
        return views, encode_token("groups", offset + size) if offset + size < total else "", total

    async def members(self, ref: GroupRef, page_size: int, page_token: str
                      ) -> tuple[list[StoredTask], str, int]:
        size = v.in_range("page_size", page_size or DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
        offset = decode_token(page_token, "members")
        ids, total = await self._store.member_ids(ref.queue, ref.id, offset, size)
        tasks = await self._reader.tasks(ref.queue, ids)
        following = offset + size
        return tasks, encode_token("members", following) if following < total else "", total

    async def flush(self, ref: GroupRef) -> Flushed:
        now = self._clock.now_ms()
        [outcome] = await self._store.flush([(ref.queue, [ref.id])], now, FLUSH_NOW)
        if not outcome.flushed:
            raise _not_found(ref)
        task_id, count = outcome.flushed[0]
        self._on_flushed(ref.queue)
        return Flushed(ref.queue, task_id, count, now)

    async def delete(self, ref: GroupRef) -> int:
        deleted = await self._store.delete(ref.queue, ref.id)
        if not deleted:
            raise _not_found(ref)
        return deleted

    async def flush_due(self) -> DuePass:
        """Flush every due group of every queue that has groups (up to a batch per queue)."""
        queues = await self._store.grouped_queues()
        if not queues:
            return DuePass(0, False, None)
        now = self._clock.now_ms()
        heads = await self._store.due(queues, now, DUE_BATCH)
        work = [(queue, due) for queue, (due, _) in zip(queues, heads, strict=True) if due]
        upcoming = [head for (due, head) in heads if not due and head is not None]
        for queue, (_, head) in zip(queues, heads, strict=True):
            if head is None:
                await self._store.forget(queue)
        flushed = 0
        for (queue, _), outcome in zip(work, await self._store.flush(work, now), strict=True):
            flushed += len(outcome.flushed)
            if outcome.flushed:
                self._on_flushed(queue)
            if outcome.next_due_ms is not None:
                upcoming.append(outcome.next_due_ms)
        more = any(len(due) >= DUE_BATCH for _, due in work)
        return DuePass(flushed, more, min(upcoming) if upcoming else None)


def group_ref(queue: str, task_type: str, group: str, field: str = "group") -> GroupRef:
    """Validate a group reference; errors name ``field``'s sub-fields."""
    v.queue_name(f"{field}.queue", queue)
    v.printable(f"{field}.type", task_type, required=True)
    if not group:
        raise InvalidField(f"{field}.group", "is required")
    check_group_key(f"{field}.group", group)
    return GroupRef(queue, task_type, group)


def _not_found(ref: GroupRef) -> GroupNotFound:
    return GroupNotFound(f"no group {ref.group!r} of type {ref.type!r} in queue {ref.queue!r} "
                         "(it may have been flushed already)")


def encode_token(kind: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{offset}".encode()).decode()


def decode_token(token: str, kind: str) -> int:
    if not token:
        return 0
    try:
        token_kind, offset = base64.urlsafe_b64decode(token.encode()).decode().split(":")
        if token_kind != kind or int(offset) < 0:
            raise ValueError(token)
        return int(offset)
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise InvalidField("page_token", "is not a token from a previous call of this kind"
                           ) from error


__all__ = ["DuePass", "GroupRef", "Groups", "group_ref"]
