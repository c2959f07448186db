"""Which queue each leased slot comes from: a pure function.

Weighted mode draws one queue per slot with probability proportional to its weight, so shares
converge on the weights over many tasks and a weight-1 queue is never starved (every slot gives
it a chance). Slots a queue cannot fill are offered to the other queues afterwards, in a
weighted-random order. Strict mode serves queues in the listed order.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class QueueShare:
    """A queue and how many tasks to ask it for in the first round."""

    queue: str
    count: int


def plan_lease(
    queues: Sequence[tuple[str, float]], slots: int, *, strict: bool, rng: random.Random
) -> tuple[list[QueueShare], list[str]]:
    """Split ``slots`` over weighted queues (a weight of 0 counts as 1; fractions are allowed:
    a pattern's weight is split over the queues it asks in one call).

    Returns the first-round asks (queues with a count > 0) and the order in which queues are
    asked for leftover slots when some queue had fewer ready tasks than its ask.
    """
    names = [name for name, _ in queues]
    if strict:
        return [QueueShare(names[0], slots)], names[1:]
    weights = [weight if weight > 0 else 1.0 for _, weight in queues]
    if len(names) == 1:
        return [QueueShare(names[0], slots)], []
    drawn = rng.choices(range(len(names)), weights=weights, k=slots)
    counts = [0] * len(names)
    for index in drawn:
        counts[index] += 1
    first = [QueueShare(names[i], counts[i]) for i in range(len(names)) if counts[i]]
    return first, weighted_order(names, weights, rng)


def weighted_order(
    names: Sequence[str], weights: Sequence[float], rng: random.Random
) -> list[str]:
    """A random permutation where heavier queues tend to come first (weighted sampling)."""
    pairs = zip(names, weights, strict=True)
    keyed = [(rng.random() ** (1.0 / weight), name) for name, weight in pairs]
    keyed.sort(reverse=True)
    return [name for _, name in keyed]
