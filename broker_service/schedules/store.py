"""The Redis side of schedules: definitions, the due index, per-schedule state and fires.

Definitions and the due index are two keys of their own slot; each schedule's state and
history live in its template queue's slot, next to the tasks a fire writes, so that
``schedule_fire.lua`` is one atomic script on one slot. The due index is only a hint of when
to look: the script re-checks the state's next tick, and the scheduler rebuilds the index from
the definitions at start.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from leasq_broker.keys import Keys
from leasq_broker.models import TaskRecord
from leasq_broker.schedules.models import Fire, FirePlan, FireStatus, Overlap, ScheduleDef
from leasq_broker.scripts import ScriptArg, ScriptCall, Scripts
from leasq_broker.store import as_text
from leasq_broker.task_records import record_fields

HISTORY_KEPT = 50


@dataclass(frozen=True, slots=True)
class ScheduleState:
    """What the scheduler reads before planning a fire."""

    next_tick: int | None
    last_task_id: str


@dataclass(frozen=True, slots=True)
class FireRequest:
    """One fire for ``schedule_fire.lua``: a plan (None: manual trigger) and the task, if any."""

    definition: ScheduleDef
    state: ScheduleState
    plan: FirePlan | None
    record: TaskRecord | None
    refusal: str = ""


@dataclass(frozen=True, slots=True)
class FireReply:
    """``status`` None: stale plan (another replica handled the tick); ``next_tick`` -1: the
    schedule's state is gone."""

    status: FireStatus | None
    next_tick: int


class ScheduleStore:
    """Runs the schedule commands and scripts against one Redis."""

    def __init__(self, redis: Redis, scripts: Scripts, keys: Keys) -> None:
        self._redis = redis
        self._scripts = scripts
        self._keys = keys

    async def get_defs(self, names: Sequence[str]) -> list[ScheduleDef | None]:
        if not names:
            return []
        raw = await self._redis.hmget(self._keys.schedule_defs(), list(names))
        return [None if value is None else ScheduleDef.from_json(value) for value in raw]

    async def names(self) -> list[str]:
        """Every schedule name, sorted."""
        return sorted(as_text(n) for n in await self._redis.hkeys(self._keys.schedule_defs()))

    async def put(self, definition: ScheduleDef, next_tick: int, old_queue: str | None) -> None:
        """Store a definition and its next tick; a queue change drops the old queue's state."""
        k = self._keys
        name, queue = definition.name, definition.template.queue
        pipe = self._redis.pipeline(transaction=False)
        pipe.hset(k.schedule_defs(), name, definition.to_json())
        if old_queue is not None and old_queue != queue:
            pipe.delete(k.schedule_state(old_queue, name), k.schedule_fires(old_queue, name))
        pipe.hset(k.schedule_state(queue, name), "n", next_tick)
        if definition.paused:
            pipe.zrem(k.schedule_due(), name)
        else:
            pipe.zadd(k.schedule_due(), {name: next_tick})
        await pipe.execute()

    async def delete(self, definition: ScheduleDef) -> None:
        k = self._keys
        name, queue = definition.name, definition.template.queue
        pipe = self._redis.pipeline(transaction=False)
        pipe.hdel(k.schedule_defs(), name)
        pipe.zrem(k.schedule_due(), name)
        pipe.delete(k.schedule_state(queue, name), k.schedule_fires(queue, name))
        await pipe.execute()

    async def states(self, definitions: Sequence[ScheduleDef]) -> list[ScheduleState]:
        pipe = self._redis.pipeline(transaction=False)
        for d in definitions:
            pipe.hmget(self._keys.schedule_state(d.template.queue, d.name), ["n", "l"])
        states = []
        for next_tick, last in await pipe.execute():
            states.append(ScheduleState(None if next_tick is None else int(next_tick),
                                        "" if last is None else as_text(last)))
        return states

    async def due(self, now_ms: int, limit: int) -> list[tuple[str, int]]:
        """Due schedules with the next tick the index holds for them."""
        entries = await self._redis.zrange(self._keys.schedule_due(), "-inf", now_ms,
                                           byscore=True, offset=0, num=limit, withscores=True)
        return [(as_text(name), int(score))  # type: ignore[arg-type, str-unpack]
                for name, score in entries]

    async def earliest_due(self) -> int | None:
        head = await self._redis.zrange(self._keys.schedule_due(), 0, 0, withscores=True)
        return int(head[0][1]) if head else None

    async def index(self, nexts: dict[str, int], gone: Sequence[str]) -> None:
        """Point the due index at new next ticks, and drop names with nothing to fire."""
        pipe = self._redis.pipeline(transaction=False)
        if nexts:
            pipe.zadd(self._keys.schedule_due(), nexts)
        if gone:
            pipe.zrem(self._keys.schedule_due(), *gone)
        if nexts or gone:
            await pipe.execute()

    async def indexed(self) -> set[str]:
        names = await self._redis.zrange(self._keys.schedule_due(), 0, -1)
        return {as_text(n) for n in names}  # type: ignore[arg-type]

    async def fire(self, requests: Sequence[FireRequest], now_ms: int) -> list[FireReply]:
        """Run ``schedule_fire.lua`` for each request, in one round trip."""
        replies = await self._scripts.call_many([self._fire_call(r, now_ms) for r in requests])
        return [
            FireReply(FireStatus(int(code)) if int(code) > 0 else None, int(nxt))
            for code, nxt in replies
        ]

    def _fire_call(self, request: FireRequest, now_ms: int) -> ScriptCall:
        k = self._keys
        d, record, plan = request.definition, request.record, request.plan
        queue = d.template.queue
        state_key = k.schedule_state(queue, d.name)
        last = request.state.last_task_id
        keys = [state_key, k.schedule_fires(queue, d.name), k.pending(queue), k.scheduled(queue),
                k.waiting(queue), k.tasks(queue), k.envelopes(queue), k.unique_locks(queue),
                k.unique_expiry(queue), k.due_forward(queue)]
        meta = envelope = ""
        if record is not None:
            meta = record.meta()
            envelope = record.envelope  # type: ignore[assignment]
        args: list[ScriptArg] = [
            now_ms, "manual" if plan is None else "tick",
            "" if plan is None else plan.expected_next, "" if plan is None else plan.new_next,
            "1" if d.overlap is Overlap.SKIP else "0", last, HISTORY_KEPT, k.notify_channel(),
            queue,
            "" if plan is None or plan.missed_from is None else plan.missed_from,
            0 if plan is None else plan.missed_count,
            _fire_tick(plan, now_ms), meta, envelope, request.refusal,
        ]
        return ScriptCall("schedule_fire", keys, args)

    async def fires(self, definition: ScheduleDef, limit: int) -> list[Fire]:
        """The newest ``limit`` fires, each with its task's state now."""
        key = self._keys.schedule_fires(definition.template.queue, definition.name)
        raw = await self._redis.lrange(key, 0, limit - 1)
        return await self._with_task_states([Fire.from_json(entry) for entry in raw])

    async def last_fires(self, definitions: Sequence[ScheduleDef]) -> list[Fire | None]:
        """Each schedule's newest fire (with its task's state), in one round trip each way."""
        if not definitions:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for d in definitions:
            pipe.lindex(self._keys.schedule_fires(d.template.queue, d.name), 0)
        newest = [None if raw is None else Fire.from_json(raw) for raw in await pipe.execute()]
        known = await self._with_task_states([f for f in newest if f is not None])
        found = iter(known)
        return [None if f is None else next(found) for f in newest]

    async def _with_task_states(self, fires: list[Fire]) -> list[Fire]:
        if not fires:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for fire in fires:
            pipe.hget(self._keys.tasks(fire.queue), fire.task_id or "-")
        states = [None if raw is None else record_fields(raw).get(b"s")
                  for raw in await pipe.execute()]
        return [
            dataclasses.replace(f, task_state="" if state is None or not f.task_id
                                else as_text(state))
            for f, state in zip(fires, states, strict=True)
        ]

def _fire_tick(plan: FirePlan | None, now_ms: int) -> ScriptArg:
    if plan is None:
        return now_ms
    return "" if plan.fire_tick is None else plan.fire_tick
