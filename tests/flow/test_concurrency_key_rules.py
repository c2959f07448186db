"""What a concurrency key may hold: its PENDING tasks are members ``key \\0 <sequence> id`` of
one sorted set per queue, found by a lex range up to ``key \\1`` (``lua/_flow.lua``), so a key
with a control character could reach another key's tasks."""

from __future__ import annotations

import pytest

from leasq_broker.errors import InvalidField
from leasq_broker.validation import concurrency_key


@pytest.mark.parametrize("value", ["a\0b", "a\1", "\0", "tab\there", ""])
def test_a_key_with_a_control_character_or_empty_is_refused(value: str) -> None:
    with pytest.raises(InvalidField, match="invalid concurrency key"):
        concurrency_key("task.concurrency_key", value)


def test_printable_keys_are_accepted() -> None:
    assert concurrency_key("task.concurrency_key", "user:42 eu-west") == "user:42 eu-west"
