"""Which concrete queues one Lease call asks Redis about: a pure function.

A Lease lists entries in order: queues by name and patterns, each with a weight. A pattern
stands for its matching queues that may hold ready tasks (its candidates, in name order). At
most ``budget`` queues are asked per call: every named queue, and for the patterns what is
left of the budget (at least one queue each), shared evenly.

- Weighted mode: each pattern asks a random sample of its candidates, and its weight is split
  evenly among them, so the pattern as a whole gets its weight's share; across calls the
  random samples rotate fairly over the candidates.
- Strict mode: a pattern takes its position in the list; within it, candidates in name order.

A queue listed by name is served under its own entry, never under a pattern; a queue two
patterns match is served under the first.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

MAX_ASKED = 16


@dataclass(frozen=True, slots=True)
class Entry:
    """One Lease entry: a queue (``candidates`` None) or a pattern and its candidates."""

    name: str
    weight: int
    candidates: Sequence[str] | None = None


def expand(
    entries: Sequence[Entry], *, strict: bool, rng: random.Random, budget: int = MAX_ASKED
) -> tuple[list[tuple[str, float]], set[str]]:
    """The (queue, weight) list to plan the call over, and which of its queues came from
    patterns. Weights of 0 count as 1."""
    named = {entry.name for entry in entries if entry.candidates is None}
    taken = set(named)
    picked: list[list[str]] = []
    for entry in entries:
        if entry.candidates is None:
            picked.append([entry.name])
            continue
        fresh = [queue for queue in entry.candidates if queue not in taken]
        taken.update(fresh)
        picked.append(fresh)
    patterns = [i for i, entry in enumerate(entries) if entry.candidates is not None and picked[i]]
    share = max(1, (budget - len(named)) // len(patterns)) if patterns else 0
    out: list[tuple[str, float]] = []
    from_patterns: set[str] = set()
    for entry, queues in zip(entries, picked, strict=True):
        weight = float(entry.weight or 1)
        if entry.candidates is None:
            out.append((entry.name, weight))
            continue
        if len(queues) > share:
            queues = queues[:share] if strict else rng.sample(queues, share)
        from_patterns.update(queues)
        out.extend((queue, weight / len(queues)) for queue in queues)
    return out, from_patterns
