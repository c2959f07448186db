"""Pattern syntax, matching, coverage by a token's pattern, and which queues one call asks."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from leasq_broker.errors import InvalidField
from leasq_broker.patterns.matching import covers, matches, validate_pattern
from leasq_broker.patterns.selection import Entry, expand


@pytest.mark.parametrize(("pattern", "queue", "expected"), [
    ("tenant.*", "tenant.a", True),
    ("tenant.*", "tenant.", True),
    ("tenant.*", "tenantx", False),
    ("t?", "tx", True),
    ("t?", "txy", False),
    ("*", "anything:at-all", True),
    ("a.b", "axb", False),  # '.' is literal
    ("*-eu", "mail-eu", True),
])  # fmt: skip
def test_star_is_any_run_question_mark_one_character_the_rest_literal(
    pattern: str, queue: str, expected: bool
) -> None:
    assert matches(pattern, queue) is expected


@pytest.mark.parametrize("bad", ["", "a" * 129, "ten{ant}*", "a b*", "[ab]*", "é*"])
def test_malformed_patterns_are_refused_naming_the_field(bad: str) -> None:
    with pytest.raises(InvalidField) as refused:
        validate_pattern("queues[2].pattern", bad)
    assert refused.value.field == "queues[2].pattern"


def test_patterns_of_the_full_alphabet_are_accepted() -> None:
    assert validate_pattern("f", "*A-z_0.9:?*") == "*A-z_0.9:?*"


@pytest.mark.parametrize(("token", "lease", "expected"), [
    ("tenant.*", "tenant.a*", True),
    ("tenant.*", "tenant.?", True),
    ("tenant.*", "tenant.*", True),
    ("tenant.*", "*", False),
    ("tenant.*", "ten*", False),
    ("tenant.*", "?enant.a", False),  # could match "xenant.a"
    ("*", "*", True),
    ("*", "a?b*", True),
    ("t?nant.*", "tenant.*", False),  # conservative: only literal-prefix patterns cover others
    ("tenant.*", "tenant.a", True),  # a name in the pattern field is matched as a name
])  # fmt: skip
def test_a_token_pattern_covers_a_lease_pattern_only_when_every_match_is_surely_allowed(
    token: str, lease: str, expected: bool
) -> None:
    assert covers(token, lease) is expected


def test_weighted_expansion_splits_the_pattern_weight_over_the_queues_it_asks() -> None:
    entries = [Entry("email", 1), Entry("tenant.*", 4, ["tenant.a", "tenant.b"])]
    queues, from_patterns = expand(entries, strict=False, rng=random.Random(1))
    assert dict(queues) == {"email": 1.0, "tenant.a": 2.0, "tenant.b": 2.0}
    assert from_patterns == {"tenant.a", "tenant.b"}


def test_one_call_asks_at_most_the_budget_and_samples_rotate_over_every_candidate() -> None:
    candidates = [f"t.{i:04}" for i in range(1000)]
    entries = [Entry("plain", 1), Entry("t.*", 1, candidates)]
    rng = random.Random(7)
    seen: Counter[str] = Counter()
    for _ in range(2000):
        queues, from_patterns = expand(entries, strict=False, rng=rng, budget=16)
        assert len(queues) == 16 and len(from_patterns) == 15
        assert abs(sum(w for q, w in queues if q in from_patterns) - 1.0) < 1e-9
        seen.update(from_patterns)
    assert set(seen) == set(candidates)  # 30,000 draws over 1,000 queues: every one asked


def test_strict_expansion_keeps_positions_and_name_order_and_skips_named_queues() -> None:
    entries = [Entry("tenant.*", 1, ["tenant.a", "tenant.b", "tenant.c"]), Entry("tenant.b", 1),
               Entry("*", 1, ["email", "tenant.a", "zeta"])]
    queues, _ = expand(entries, strict=True, rng=random.Random())
    assert [q for q, _ in queues] == ["tenant.a", "tenant.c", "tenant.b", "email", "zeta"]


def test_patterns_without_candidates_contribute_nothing() -> None:
    queues, from_patterns = expand([Entry("x.*", 5, [])], strict=False, rng=random.Random())
    assert queues == [] and from_patterns == set()
