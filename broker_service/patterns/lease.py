"""Turn a Lease's entries (named queues and patterns) into the concrete queues of one call."""

from __future__ import annotations

import random

from leasq_broker.models import LeaseAsk
from leasq_broker.patterns.index import PatternIndex
from leasq_broker.patterns.selection import MAX_ASKED, Entry, expand


async def resolve(
    ask: LeaseAsk, index: PatternIndex, rng: random.Random, budget: int = MAX_ASKED
) -> tuple[list[tuple[str, float]], set[str]]:
    """The weighted queues to plan this call over and which of them came from patterns."""
    if not ask.patterns:
        return [(name, float(weight)) for name, weight in ask.queues], set()
    return expand(await entries(ask, index), strict=ask.strict, rng=rng, budget=budget)


async def entries(ask: LeaseAsk, index: PatternIndex) -> list[Entry]:
    """The request's entries in their listed order, patterns with their maybe-ready queues."""
    at = {position: (pattern, weight) for position, pattern, weight in ask.patterns}
    named = iter(ask.queues)
    out: list[Entry] = []
    for position in range(len(ask.queues) + len(ask.patterns)):
        if position in at:
            pattern, weight = at[position]
            ready = index.ready_among(await index.matched(pattern))
            out.append(Entry(pattern, weight, ready))
        else:
            name, weight = next(named)
            out.append(Entry(name, weight))
    return out


async def watched(ask: LeaseAsk, index: PatternIndex) -> list[str]:
    """Every queue a long poll of ``ask`` waits on: named ones and all their patterns match."""
    queues = dict.fromkeys(name for name, _ in ask.queues)
    for _, pattern, _ in ask.patterns:
        queues.update(dict.fromkeys(await index.matched(pattern)))
    return list(queues)


def may_have_tasks(ask: LeaseAsk, index: PatternIndex) -> bool:
    """Whether a queue of the ask's patterns (not listed by name) is still "maybe ready"."""
    named = {name for name, _ in ask.queues}
    return any(queue not in named
               for _, pattern, _ in ask.patterns
               for queue in index.ready_among(index.matched_now(pattern)))
