"""What makes a process a test started misbehave: error-level log lines, tracebacks, exit codes.

Every broker (:class:`broker_process.BrokerHandle`) and worker subprocess
(``worker_testing.WorkerProcess``) registers itself with :func:`watch`; after each test the
autouse fixture in ``tests/conftest.py`` asks each of them for the problems seen since it last
asked, and so does it for the error-level records logged in the test process itself
(:class:`LocalLogs`: structlog events and stdlib records, e.g. of an in-process ``Worker``).
Any problem fails the test at teardown with the lines that caused it.

A test that provokes an error on purpose says so:

- ``handle.expect_log("redis refused a command")``: lines of that process containing the text
  are allowed (until its next check);
- ``handle.expect_exit(1)``: that exit code is allowed as well as 0;
- ``@pytest.mark.expect_log("text", ...)``: allowed in every process the test checks,
  the test process included.

A process killed on purpose (``kill()``) is not asked for its exit code; a graceful stop must
exit 0.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pytest
import structlog

ERROR_LEVELS = frozenset({"error", "critical", "exception", "fatal"})
# Lines the interpreter writes on its own, with no logger: the first line of each block.
_TEXT_BLOCK_STARTS = ("Traceback (most recent call last)", "Exception ignored in",
                      "Fatal Python error", "Task exception was never retrieved")  # fmt: skip
# gRPC core's own error lines ("E0424 10:00:00.123456  123 file.cc:45] ...").
_GRPC_CORE_ERROR = re.compile(r"^E\d{4} \d\d:\d\d:\d\d")
SUMMARY_CHARS = 400


@dataclass(frozen=True)
class ErrorLine:
    """One error-level line or traceback of a log: a one-line summary and the whole text."""

    summary: str
    text: str

    def expected(self, patterns: Iterable[str]) -> bool:
        return any(pattern in self.text for pattern in patterns)


def error_lines(lines: Iterable[str]) -> list[ErrorLine]:
    """The error-level JSON records and plain-text tracebacks among ``lines``.

    A JSON record counts when its ``level`` is error or worse, or when it carries an
    ``exception`` (a traceback logged at any level). Plain text counts when it starts a
    traceback (the lines up to the next JSON record belong to it) or is a gRPC core error.
    """
    found: list[ErrorLine] = []
    block: list[str] = []

    def close_block() -> None:
        if block:
            tail = next((line for line in reversed(block) if line.strip()), block[0])
            found.append(ErrorLine(f"{block[0].strip()} ... {tail.strip()}"[:SUMMARY_CHARS],
                                   "\n".join(block)))  # fmt: skip
            block.clear()

    for line in lines:
        record = _json_record(line)
        if record is not None:
            close_block()
            summary = _record_summary(record)
            if summary is not None:
                found.append(ErrorLine(summary, line))
        elif block:
            block.append(line)
        elif line.startswith(_TEXT_BLOCK_STARTS):
            block.append(line)
        elif _GRPC_CORE_ERROR.match(line):
            found.append(ErrorLine(line.strip()[:SUMMARY_CHARS], line))
    close_block()
    return found


def _json_record(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def _record_summary(record: dict[str, Any]) -> str | None:
    level = str(record.get("level", "")).lower()
    if level not in ERROR_LEVELS and not record.get("exception"):
        return None
    exception = str(record.get("exception", "")).strip().splitlines()
    detail = exception[-1] if exception else record.get("error", "")
    return f"{level} {record.get('event')!r}: {detail}"[:SUMMARY_CHARS]


class Watched(Protocol):
    """A process a test started, checked after each test."""

    @property
    def finished(self) -> bool:
        """True once it has exited and its exit was checked: no later check can find more."""
        ...

    def describe(self) -> str: ...

    def take_problems(self, patterns: Iterable[str] = ()) -> list[str]:
        """Problems since the last call (exit codes, error lines not matching ``patterns`` or
        the process's own expectations); resets its expectations."""
        ...


_WATCHED: list[Watched] = []


def watch(process: Watched) -> None:
    """Check ``process`` after the running test and every later one until it has finished."""
    if not any(process is known for known in _WATCHED):
        _WATCHED.append(process)


def take_all_problems(patterns: Iterable[str] = ()) -> Iterator[str]:
    """Every watched process's new problems, each line prefixed with the process; forgets
    processes that finished."""
    patterns = tuple(patterns)
    for process in list(_WATCHED):
        for problem in process.take_problems(patterns):
            yield f"{process.describe()}: {problem}"
        if process.finished:
            _WATCHED.remove(process)


def fail_on_problems(problems: Sequence[str], what: str) -> None:
    """Fail the test (at teardown, from a fixture) listing ``problems``, if any."""
    if problems:
        pytest.fail(f"{what}:\n  " + "\n  ".join(problems) + "\n(declare what a test causes on "
                    "purpose with expect_log / expect_exit: see tests/process_checks.py)",
                    pytrace=False)  # fmt: skip


def check_stopped(process: Watched) -> None:
    """For a fixture that outlives one test: fail on what ``process`` did since the last test."""
    fail_on_problems(process.take_problems(), process.describe())


def unexpected_lines(lines: Iterable[str], patterns: Iterable[str]) -> list[str]:
    """Summaries of the error lines among ``lines`` that no pattern allows."""
    patterns = tuple(patterns)
    return [f"logged {line.summary}" for line in error_lines(lines)
            if not line.expected(patterns)]  # fmt: skip


@dataclass
class Expectations:
    """What one process is allowed to do until its next check, besides logging no errors and
    exiting 0."""

    logs: list[str] = field(default_factory=list)
    exits: set[int] = field(default_factory=set)

    def reset(self) -> None:
        self.logs.clear()
        self.exits.clear()

    def exit_problem(self, code: int, how: str) -> str | None:
        if code == 0 or code in self.exits:
            return None
        return f"{how} with exit code {code} (expected 0{''.join(f' or {c}' for c in self.exits)})"


class LocalLogs:
    """Error-level records logged in this process while installed: structlog events (any
    configuration: a processor goes first in the shared processor list, which loggers already
    bound keep a reference to) and stdlib logging records (asyncio, grpc)."""

    def __init__(self) -> None:
        self.records: list[ErrorLine] = []
        self.expected: list[str] = []
        self._processors: list[Any] | None = None
        self._handler = _ListHandler(self.records)

    def expect(self, *patterns: str) -> None:
        """Allow error records whose text contains one of ``patterns``."""
        self.expected.extend(patterns)

    def install(self) -> None:
        self._processors = structlog.get_config()["processors"]
        self._processors.insert(0, self._structlog_processor)
        logging.getLogger().addHandler(self._handler)

    def uninstall(self) -> None:
        logging.getLogger().removeHandler(self._handler)
        if self._processors is not None and self._structlog_processor in self._processors:
            self._processors.remove(self._structlog_processor)

    def unexpected(self, patterns: Iterable[str] = ()) -> list[str]:
        allowed = (*self.expected, *patterns)
        return [f"logged {record.summary}" for record in self.records
                if not record.expected(allowed)]  # fmt: skip

    def _structlog_processor(self, _logger: Any, method: str, event: Any) -> Any:
        if method in ERROR_LEVELS or event.get("exc_info"):
            exc_info = event.get("exc_info")
            detail = ""
            if isinstance(exc_info, BaseException):
                detail = repr(exc_info)
            elif exc_info is True or isinstance(exc_info, tuple):
                detail = "(with traceback)"
            fields = {k: v for k, v in event.items() if k not in ("event", "exc_info")}
            text = " ".join(filter(None, (method, repr(event.get("event")), detail, str(fields))))
            self.records.append(ErrorLine(text[:SUMMARY_CHARS], text))
        return event


class _ListHandler(logging.Handler):
    def __init__(self, records: list[ErrorLine]) -> None:
        super().__init__(logging.ERROR)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = f"{record.levelname.lower()} {record.name}: {record.getMessage()}"
            if record.exc_info and record.exc_info[1] is not None:
                text += f" {record.exc_info[1]!r}"
        except Exception:  # a record that cannot format is still an error record
            text = f"{record.levelname.lower()} {record.name}: {record.msg!r}"
        self.records.append(ErrorLine(text[:SUMMARY_CHARS], text))
