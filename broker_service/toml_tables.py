"""Reading the broker's declarative files: TOML documents made of one array of tables
(``[[schedule]]``, ``[[queue]]``), with the table headers' line numbers for error messages."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any


def read_tables(path: Path, key: str, plural: str, error: type[ValueError]
                ) -> tuple[list[Any], str]:
    """The ``[[key]]`` tables of the file (not yet checked to be tables) and its text; any
    other shape raises ``error`` naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read: {exc}") from exc
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: not valid TOML: {exc}") from exc
    unknown = set(document) - {key}
    if unknown:
        raise error(f"{path}: unknown top-level keys {sorted(unknown)}; "
                    f"list {plural} as [[{key}]] tables")
    tables = document.get(key, [])
    if not isinstance(tables, list):
        raise error(f"{path}: '{key}' must be an array of tables ([[{key}]])")
    return tables, text


def header_lines(lines: list[str], key: str) -> list[int]:
    """1-based line numbers of the ``[[key]]`` headers, in order."""
    header = re.compile(rf"^\s*\[\[\s*{re.escape(key)}\s*\]\]")
    return [i + 1 for i, line in enumerate(lines) if header.match(line)]
