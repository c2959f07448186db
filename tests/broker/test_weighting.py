"""The weighted queue choice is a pure function: shares follow weights, nobody starves."""

from __future__ import annotations

import random
from collections import Counter

from leasq_broker.weighting import plan_lease, weighted_order

WEIGHTS = [("critical", 6), ("default", 3), ("low", 1)]


def test_slot_shares_stay_within_five_percent_of_the_weights_over_10000_slots() -> None:
    rng = random.Random(7)
    counts: Counter[str] = Counter()
    for _ in range(1000):
        first, _ = plan_lease(WEIGHTS, 10, strict=False, rng=rng)
        counts.update({share.queue: share.count for share in first})
    total = sum(counts.values())
    assert total == 10_000
    for queue, weight in WEIGHTS:
        assert abs(counts[queue] / total - weight / 10) <= 0.05


def test_a_weight_one_queue_is_served_even_when_leasing_one_task_at_a_time() -> None:
    rng = random.Random(1)
    picks = Counter(plan_lease(WEIGHTS, 1, strict=False, rng=rng)[0][0].queue
                    for _ in range(2000))
    assert picks["low"] > 100


def test_strict_order_asks_the_first_queue_for_every_slot_then_the_rest_in_order() -> None:
    first, fallback = plan_lease(WEIGHTS, 8, strict=True, rng=random.Random())
    assert [(s.queue, s.count) for s in first] == [("critical", 8)]
    assert fallback == ["default", "low"]


def test_leftover_order_is_a_permutation_favouring_heavier_queues() -> None:
    rng = random.Random(3)
    heads = Counter(weighted_order(["a", "b"], [9, 1], rng)[0] for _ in range(1000))
    assert sorted(weighted_order(["a", "b", "c"], [1, 1, 1], rng)) == ["a", "b", "c"]
    assert heads["a"] > heads["b"] > 0
