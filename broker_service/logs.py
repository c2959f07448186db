"""Logging setup of the broker process: structlog, with stdlib loggers rendered the same way.

Called once by the CLI, never at import time. Console output for a person at a terminal, one JSON
object per line for log shippers. Context bound with ``structlog.contextvars`` (request id, task
id, queue, worker id) is merged into every line written while it is bound.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog
from structlog.typing import Processor

LOG_FORMATS = ("auto", "json", "console")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def level_number(level: str) -> int:
    """The stdlib number of a level name; raises ValueError for an unknown name."""
    name = level.lower()
    if name not in LOG_LEVELS:
        raise ValueError(f"unknown log level {level!r}; one of {', '.join(LOG_LEVELS)}")
    return int(logging.getLevelName(name.upper()))


def resolve_format(log_format: str, stream: TextIO) -> str:
    """``auto`` means console on a terminal and JSON otherwise."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"unknown log format {log_format!r}; one of {', '.join(LOG_FORMATS)}")
    if log_format != "auto":
        return log_format
    isatty = getattr(stream, "isatty", None)
    return "console" if isatty is not None and isatty() else "json"


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]


def _renderer(fmt: str, colors: bool) -> Processor:
    if fmt == "console":
        return structlog.dev.ConsoleRenderer(colors=colors)
    return structlog.processors.JSONRenderer()


def configure_logging(
    level: str = "info", log_format: str = "auto", stream: TextIO | None = None
) -> None:
    """Configure structlog and the stdlib root logger (grpc, redis, asyncio) to one stream."""
    out = stream if stream is not None else sys.stderr
    number = level_number(level)
    fmt = resolve_format(log_format, out)
    colors = fmt == "console" and resolve_format("auto", out) == "console"
    shared = _shared_processors()
    final: list[Processor] = [] if fmt == "console" else [structlog.processors.format_exc_info]
    structlog.configure(
        processors=[*shared, *final, _renderer(fmt, colors)],
        wrapper_class=structlog.make_filtering_bound_logger(number),
        # One write per line (print() writes the line, then its newline): the processes of
        # `serve --processes N` share one stderr, and their lines must not interleave.
        logger_factory=structlog.WriteLoggerFactory(file=out),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared, *final],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                        _renderer(fmt, colors)],
        )
    )  # fmt: skip
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Libraries are chatty at debug; their warnings matter, their routine lines do not.
    root.setLevel(max(number, logging.INFO))
