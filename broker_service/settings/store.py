"""Reads and writes a queue's settings hash: the group fields and the flow fields in one
transaction, so an update and the settings it answers with are one consistent state."""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

from leasq_broker.cluster_slots import is_cluster
from leasq_broker.groups.models import (
    GRACE_FIELD,
    MAX_DELAY_FIELD,
    MAX_SIZE_FIELD,
    GroupSettings,
)
from leasq_broker.keys import Keys
from leasq_broker.models import StoredTask
from leasq_broker.settings.blocked import FlowSnapshot
from leasq_broker.settings.models import (
    BURST_FIELD,
    DEFAULT_PER_KEY_LIMIT,
    FLOW_FIELDS,
    KEY_LIMIT_FIELD,
    MAX_ACTIVE_FIELD,
    RATE_FIELD,
    FlowSettings,
    QueueSettings,
    QueueSettingsUpdate,
    RateLimit,
)

_GROUP_FIELDS = {"grace_ms": GRACE_FIELD, "max_delay_ms": MAX_DELAY_FIELD,
                 "max_size": MAX_SIZE_FIELD}
_ALL = [*_GROUP_FIELDS.values(), *FLOW_FIELDS]
Raw = Sequence[bytes | str | None]


class QueueSettingsStore:
    """The settings hash of each queue (``Keys.queue_settings``)."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def get(self, queue: str) -> QueueSettings:
        return parse(await self._redis.hmget(self._keys.queue_settings(queue), _ALL))

    async def update(self, queue: str, update: QueueSettingsUpdate) -> QueueSettings:
        """Apply ``update`` and read the settings back, in one transaction and round trip."""
        key = self._keys.queue_settings(queue)
        values: dict[str, str | int | float] = {
            field: getattr(update.groups, name) for name, field in _GROUP_FIELDS.items()
            if getattr(update.groups, name) is not None}
        reset = [field for name, field in _GROUP_FIELDS.items() if name in update.groups.reset]
        flow = update.flow
        if flow.rate_limit is not None:
            rate = flow.rate_limit.resolved()
            values[RATE_FIELD], values[BURST_FIELD] = repr(rate.per_second), rate.burst
        elif "rate_limit" in flow.reset:
            reset += [RATE_FIELD, BURST_FIELD]
        for name, field in (("max_active", MAX_ACTIVE_FIELD),
                            ("per_key_limit", KEY_LIMIT_FIELD)):
            value = getattr(flow, name)
            if value:
                values[field] = value
            elif value == 0 or name in flow.reset:
                reset.append(field)
        pipe = self._redis.pipeline(transaction=True)
        for field, value in values.items():
            pipe.hset(key, field, value)
        if reset:
            pipe.hdel(key, *reset)
        pipe.hmget(key, _ALL)
        replies = await pipe.execute()
        return parse(replies[-1])


    async def snapshot(self, task: StoredTask) -> FlowSnapshot:
        """The flow state that may hold ``task`` back, in one round trip."""
        k, queue = self._keys, task.queue
        # TIME has no key: a Cluster transaction (one slot) cannot carry it, so there it is
        # read right after the transaction (one more round trip).
        cluster = is_cluster(self._redis)
        pipe = self._redis.pipeline(transaction=True)
        if not cluster:
            pipe.time()
        pipe.exists(k.paused(queue))
        pipe.hmget(k.queue_settings(queue), [*_ALL, "ll"])
        pipe.hmget(k.flow(queue), ["tk", "tt"])
        pipe.zcard(k.active(queue))
        pipe.hget(k.key_active(queue), task.fields.get("ck", ""))
        pipe.zscore(k.group_due(queue), task.fields.get("gi", ""))
        replies = await pipe.execute()
        if cluster:
            replies = [await self._redis.time(), *replies]
        (seconds, micros), paused, raw, (tokens, at), active, key_active, due = replies
        last = raw[-1]
        return FlowSnapshot(
            now_ms=seconds * 1000 + micros / 1000, paused=bool(paused),
            flow=parse(raw[:-1]).flow, tokens=float(tokens) if tokens is not None else None,
            tokens_at_ms=float(at) if at is not None else None, active=int(active),
            key_active=int(key_active or 0), last_lease_ms=int(last) if last else None,
            group_flush_ms=int(due) if due is not None else None)


def parse(raw: Raw) -> QueueSettings:
    """Stored values (HMGET of ``_ALL``), defaults for the unset ones."""
    defaults = GroupSettings()
    groups = GroupSettings(**{
        name: int(value) if value is not None else getattr(defaults, name)
        for name, value in zip(_GROUP_FIELDS, raw[:3], strict=True)
    })
    rate, burst, max_active, key_limit = raw[3:]
    return QueueSettings(groups, FlowSettings(
        rate_limit=RateLimit(float(rate), int(burst or 0)).resolved() if rate is not None
        else None,
        max_active=int(max_active or 0),
        per_key_limit=int(key_limit or DEFAULT_PER_KEY_LIMIT),
    ))
