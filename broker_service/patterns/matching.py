"""What a queue pattern is: its syntax, the queues it matches, and when a token's pattern
surely covers it.

A pattern uses the characters of a queue name plus ``*`` (any characters, possibly none) and
``?`` (exactly one). Queue names cannot hold ``*`` or ``?``, so a string with either is a
pattern wherever both may appear. No character classes: ``[`` is not in the alphabet, which
keeps matching and coverage simple enough to decide exactly.
"""

from __future__ import annotations

import functools
import re
from fnmatch import fnmatchcase

from leasq_broker.errors import InvalidField

PATTERN_RE = re.compile(r"[A-Za-z0-9_.:*?-]{1,128}")
WILDCARDS = frozenset("*?")


def is_pattern(text: str) -> bool:
    """Whether ``text`` holds a wildcard (a queue name never does)."""
    return "*" in text or "?" in text


def validate_pattern(field: str, value: str) -> str:
    """A pattern as the contract allows it, else :class:`InvalidField` naming ``field``."""
    if not PATTERN_RE.fullmatch(value):
        raise InvalidField(
            field,
            f"invalid queue pattern {value[:140]!r}: use 1-128 characters of "
            "[A-Za-z0-9_.:-] plus '*' (any characters) and '?' (one character)",
        )
    return value


@functools.lru_cache(maxsize=4096)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The regular expression of ``pattern`` (use with ``fullmatch``)."""
    parts = [".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.DOTALL)


def matches(pattern: str, queue: str) -> bool:
    return compile_pattern(pattern).fullmatch(queue) is not None


def literal_prefix(pattern: str) -> str:
    """The characters before the first wildcard: every match starts with them."""
    for index, char in enumerate(pattern):
        if char in WILDCARDS:
            return pattern[:index]
    return pattern


def covers(token_pattern: str, lease_pattern: str) -> bool:
    """Whether every queue ``lease_pattern`` can match surely matches ``token_pattern``.

    Conservative (it may say no where the answer is yes, never the reverse): equal patterns;
    a token pattern that is a literal prefix followed by one final ``*`` covers any lease
    pattern whose own literal prefix starts with it (``tenant.*`` covers ``tenant.a*`` and
    ``tenant.?x``, not ``*`` nor ``ten*``); a lease "pattern" without wildcards is a queue name
    and is matched as one (with ``fnmatch``, as token patterns are matched against names).
    """
    if token_pattern == lease_pattern:
        return True
    if not is_pattern(lease_pattern):
        return fnmatchcase(lease_pattern, token_pattern)
    head = token_pattern[:-1]
    if not token_pattern.endswith("*") or is_pattern(head) or "[" in head:
        return False
    return literal_prefix(lease_pattern).startswith(head)
