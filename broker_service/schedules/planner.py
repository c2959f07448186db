"""Which tick a due schedule fires now, and where its next tick moves: a pure function.

A tick that no broker fired within :data:`LATE_GRACE_MS` of its instant is *missed* (all brokers
were down, or the schedule's queue was unreachable). Ticks late by less always fire, oldest first,
so a broker that was only slow catches up. Missed ticks follow the catch-up policy:

- SKIP: dropped; recorded once in the history with their count.
- ONE: one fire, with the id of the latest missed tick, stands for all of them.
- ALL: every missed tick within ``catch_up_window`` of now fires, each with its own id, one per
  scheduler pass; older ones are dropped and recorded.
"""

from __future__ import annotations

from leasq_broker.schedules.models import CatchUp, FirePlan, ScheduleDef
from leasq_broker.schedules.ticks import Ticker

LATE_GRACE_MS = 10_000
# Missed ticks are counted for the history only up to this many (more: recorded as 0).
COUNT_LIMIT = 10_000


def plan(definition: ScheduleDef, ticker: Ticker, next_tick: int, now: int) -> FirePlan | None:
    """The plan for a schedule whose stored next tick is ``next_tick``; None if not yet due."""
    if next_tick > now:
        return None
    if now - next_tick <= LATE_GRACE_MS:
        return FirePlan(next_tick, ticker.next_after(next_tick), next_tick)
    latest = ticker.last_at_or_before(now)
    policy = definition.catch_up
    if policy is CatchUp.ONE:
        return FirePlan(next_tick, ticker.next_after(latest), latest)
    if policy is CatchUp.ALL:
        oldest_allowed = now - definition.catch_up_window_ms
        if next_tick >= oldest_allowed:
            return FirePlan(next_tick, ticker.next_after(next_tick), next_tick)
        first = ticker.next_after(oldest_allowed - 1)
        dropped = ticker.count_between(next_tick, first, COUNT_LIMIT)
        if first > now:
            return FirePlan(next_tick, first, None, next_tick, dropped)
        return FirePlan(next_tick, ticker.next_after(first), first, next_tick, dropped)
    # SKIP: the latest tick still fires when it is within the grace, the rest are dropped.
    if now - latest <= LATE_GRACE_MS:
        dropped = ticker.count_between(next_tick, latest, COUNT_LIMIT)
        return FirePlan(next_tick, ticker.next_after(latest), latest, next_tick, dropped)
    dropped = ticker.count_between(next_tick, now + 1, COUNT_LIMIT)
    return FirePlan(next_tick, ticker.next_after(now), None, next_tick, dropped)
