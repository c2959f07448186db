"""The schedules use case: manage definitions, fire what is due, read the history.

Any replica may run :meth:`Schedules.fire_due` at any time: each fire is a guarded transition
(see ``schedule_fire.lua``), so replicas racing for the same tick enqueue it once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from leasq_broker import validation as v
from leasq_broker.clock import Clock
from leasq_broker.errors import DuplicateTask, InvalidField, LeasqError, ScheduleNotFound
from leasq_broker.models import Enqueued
from leasq_broker.producer import DEFAULT_QUEUE, Producer
from leasq_broker.schedules import planner, tasks
from leasq_broker.schedules.models import (
    Fire,
    FirePlan,
    FireStatus,
    Overlap,
    ScheduleDef,
    ScheduleView,
)
from leasq_broker.schedules.store import FireRequest, ScheduleState, ScheduleStore
from leasq_broker.schedules.ticks import Ticker, ticker
from leasq_broker.store import TaskStore

log = structlog.get_logger(__name__)

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
DUE_BATCH = 500


class SyncRefused(Exception):
    """The ``index``-th definition of a sync was refused; nothing was written."""

    def __init__(self, index: int, error: InvalidField) -> None:
        super().__init__(error.message)
        self.index = index
        self.error = error


@dataclass(frozen=True, slots=True)
class DuePass:
    """What one scheduler pass did: fires handled, and whether more is due right away."""

    handled: int
    more_due: bool


class Schedules:
    """Schedule definitions and their fires."""

    def __init__(
        self, store: ScheduleStore, tasks_store: TaskStore, producer: Producer, clock: Clock,
        on_enqueued: Callable[[str], None], on_changed: Callable[[], None],
    ) -> None:
        self._store = store
        self._tasks_store = tasks_store
        self._producer = producer
        self._clock = clock
        self._on_enqueued = on_enqueued
        self._on_changed = on_changed

    async def upsert(self, definition: ScheduleDef) -> tuple[ScheduleView, bool]:
        """Create or replace; the next tick is kept while spec, zone and queue are unchanged."""
        now = self._clock.now_ms()
        parsed = self._check(definition, now)
        created = await self._put_checked(definition, parsed, now)
        self._on_changed()
        return await self._view(definition), created

    def _check(self, definition: ScheduleDef, now: int) -> Ticker:
        """Fill in defaults and validate; the parsed spec."""
        definition.template.queue = definition.template.queue or DEFAULT_QUEUE
        definition.time_zone = definition.time_zone or "UTC"
        return tasks.check(definition, self._producer, now)

    async def _put_checked(self, definition: ScheduleDef, parsed: Ticker, now: int) -> bool:
        """Store a checked definition; True when it is new."""
        [old] = await self._store.get_defs([definition.name])
        next_tick = parsed.next_after(now)
        if old is not None:
            definition.created_ms = old.created_ms
            if old.timing() == definition.timing() and not old.paused:
                [state] = await self._store.states([old])
                next_tick = state.next_tick if state.next_tick is not None else next_tick
        else:
            definition.created_ms = now
        definition.updated_ms = now
        await self._tasks_store.remember_queue(definition.template.queue)
        await self._store.put(definition, next_tick, None if old is None else old.template.queue)
        return old is None

    async def get(self, name: str) -> ScheduleView:
        return await self._view(await self._definition(name))

    async def page(self, page_size: int, page_token: str) -> tuple[list[ScheduleView], str, int]:
        """A page of schedules ordered by name; the token is the last name of the page."""
        size = v.in_range("page_size", page_size or DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
        names = await self._store.names()
        rest = [n for n in names if n > page_token] if page_token else names
        page = rest[:size]
        views = await self._views([d for d in await self._store.get_defs(page) if d is not None])
        token = page[-1] if len(rest) > size else ""
        return views, token, len(names)

    @staticmethod
    def upcoming(view: ScheduleView, count: int) -> list[int]:
        """The next ``count`` ticks of a schedule from its stored next tick (none while it is
        paused); each fire may add up to the jitter."""
        if view.next_fire_ms is None:
            return []
        parsed = ticker(view.definition.spec, view.definition.time_zone)
        ticks = [view.next_fire_ms]
        while len(ticks) < count:
            ticks.append(parsed.next_after(ticks[-1]))
        return ticks

    async def delete(self, name: str) -> None:
        await self._store.delete(await self._definition(name))

    async def set_paused(self, name: str, paused: bool) -> ScheduleView:
        """Pause, or resume from the first tick after now (ticks while paused never fire)."""
        definition = await self._definition(name)
        if definition.paused != paused:
            definition.paused = paused
            definition.updated_ms = now = self._clock.now_ms()
            parsed = ticker(definition.spec, definition.time_zone)
            await self._store.put(definition, parsed.next_after(now), definition.template.queue)
            self._on_changed()
        return await self._view(definition)

    async def trigger(self, name: str) -> Enqueued:
        """Fire now, outside the spec; the next tick stays where it is."""
        definition = await self._definition(name)
        now = self._clock.now_ms()
        record = tasks.build_record(self._producer, definition, now, now, manual=True)
        request = FireRequest(definition, ScheduleState(None, ""), None, record)
        [reply] = await self._store.fire([request], now)
        queue = definition.template.queue
        if reply.status is FireStatus.REFUSED:
            raise DuplicateTask(
                f"schedule {name!r}: an equal unique task holds the lock in queue {queue!r}"
            )
        self._on_enqueued(queue)
        return Enqueued(record.id, queue, record.process_at_ms > now,
                        max(record.process_at_ms, now))

    async def fires(self, name: str, limit: int) -> list[Fire]:
        limit = v.in_range("limit", limit or 50, 1, 50)
        return await self._store.fires(await self._definition(name), limit)

    async def sync(self, definitions: Sequence[ScheduleDef]) -> tuple[int, int]:
        """Make the stored set equal to ``definitions``: (upserted, deleted). Every definition
        is checked before anything is written: a refusal raises :class:`SyncRefused`."""
        now = self._clock.now_ms()
        parsed: list[Ticker] = []
        for index, definition in enumerate(definitions):
            try:
                parsed.append(self._check(definition, now))
            except InvalidField as error:
                raise SyncRefused(index, error) from error
        for definition, ticks in zip(definitions, parsed, strict=True):
            await self._put_checked(definition, ticks, now)
        wanted = {d.name for d in definitions}
        stale = [n for n in await self._store.names() if n not in wanted]
        for found in await self._store.get_defs(stale):
            if found is not None:
                await self._store.delete(found)
        self._on_changed()
        return len(definitions), len(stale)

    async def reindex(self) -> int:
        """Put every active schedule missing from the due index back in it (at start)."""
        indexed = await self._store.indexed()
        missing = [n for n in await self._store.names() if n not in indexed]
        definitions = [d for d in await self._store.get_defs(missing) if d and not d.paused]
        now = self._clock.now_ms()
        nexts: dict[str, int] = {}
        for d, state in zip(definitions, await self._store.states(definitions), strict=True):
            nexts[d.name] = state.next_tick or ticker(d.spec, d.time_zone).next_after(now)
        await self._store.index(nexts, [])
        return len(nexts)

    async def fire_due(self) -> DuePass:
        """Handle every due tick (one per schedule per pass).

        The due index's score stands in for the stored next tick (the fire script checks it),
        so only schedules with overlap SKIP read their state first (for the previous task).
        """
        now = self._clock.now_ms()
        due = await self._store.due(now, DUE_BATCH)
        if not due:
            return DuePass(0, False)
        found = await self._store.get_defs([name for name, _ in due])
        gone = [name for (name, _), d in zip(due, found, strict=True) if d is None or d.paused]
        active = [(d, score) for (_, score), d in zip(due, found, strict=True)
                  if d is not None and not d.paused]
        watched = [d for d, _ in active if d.overlap is Overlap.SKIP]
        last_tasks = {d.name: state.last_task_id
                      for d, state in zip(watched, await self._store.states(watched),
                                          strict=True)}
        requests, nexts = [], {}
        for definition, score in active:
            state = ScheduleState(score, last_tasks.get(definition.name, ""))
            plan = planner.plan(definition, ticker(definition.spec, definition.time_zone),
                                score, now)
            if plan is None:
                nexts[definition.name] = score
            else:
                requests.append(self._request(definition, state, plan, now))
        replies = await self._store.fire(requests, now) if requests else []
        for request, reply in zip(requests, replies, strict=True):
            definition = request.definition
            if reply.next_tick < 0:  # state lost (e.g. Redis restarted without its data)
                parsed = ticker(definition.spec, definition.time_zone)
                await self._store.put(definition, parsed.next_after(now), None)
                continue
            nexts[definition.name] = reply.next_tick
            if reply.status in (FireStatus.FIRED, FireStatus.MANUAL):
                self._on_enqueued(definition.template.queue)
        await self._store.index(nexts, gone)
        more = len(due) >= DUE_BATCH or any(n <= now for n in nexts.values())
        return DuePass(len(requests), more)

    async def earliest_due(self) -> int | None:
        return await self._store.earliest_due()

    def _request(self, definition: ScheduleDef, state: ScheduleState, plan: FirePlan,
                 now: int) -> FireRequest:
        """The fire of a plan; a template the producer refuses now is recorded as REFUSED."""
        record, refusal = None, ""
        if plan.fire_tick is not None:
            try:
                record = tasks.build_record(self._producer, definition, plan.fire_tick, now)
            except LeasqError as error:
                refusal = f"{error.reason}: {error.message}"
        return FireRequest(definition, state, plan, record, refusal)

    async def _definition(self, name: str) -> ScheduleDef:
        if not name:
            raise InvalidField("name", "is required")
        v.task_id("name", name)
        [definition] = await self._store.get_defs([name])
        if definition is None:
            raise ScheduleNotFound(f"no schedule named {name!r}")
        return definition

    async def _view(self, definition: ScheduleDef) -> ScheduleView:
        return (await self._views([definition]))[0]

    async def _views(self, definitions: Sequence[ScheduleDef]) -> list[ScheduleView]:
        """Definitions with their next and last fires, read in one batch."""
        states = await self._store.states(definitions) if definitions else []
        last_fires = await self._store.last_fires(definitions)
        return [
            ScheduleView(d, None if d.paused else state.next_tick, last)
            for d, state, last in zip(definitions, states, last_fires, strict=True)
        ]
