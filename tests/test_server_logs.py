"""Log output of the broker: JSON for machines, console for people, bound context merged."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from leasq_broker.logs import configure_logging, resolve_format


@pytest.fixture
def restore_logging() -> Iterator[None]:
    handlers, level = logging.getLogger().handlers[:], logging.getLogger().level
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    logging.getLogger().handlers[:] = handlers
    logging.getLogger().setLevel(level)


def test_json_lines_carry_the_context_bound_by_other_code(restore_logging: None) -> None:
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    structlog.contextvars.bind_contextvars(request_id="r-1", task_id="t-9", queue="mail")
    structlog.get_logger("test").info("task leased", worker_id="w-3")
    line = json.loads(out.getvalue().splitlines()[-1])
    assert line["event"] == "task leased"
    assert line["level"] == "info"
    assert (line["request_id"], line["task_id"], line["queue"], line["worker_id"]) == (
        "r-1", "t-9", "mail", "w-3"
    )  # fmt: skip
    assert "timestamp" in line


def test_lines_below_the_configured_level_are_dropped(restore_logging: None) -> None:
    out = io.StringIO()
    configure_logging("warning", "json", stream=out)
    structlog.get_logger("test").info("routine")
    structlog.get_logger("test").warning("odd")
    assert [json.loads(line)["event"] for line in out.getvalue().splitlines()] == ["odd"]


def test_standard_library_loggers_are_rendered_the_same_way(restore_logging: None) -> None:
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    logging.getLogger("grpc").warning("transport closed")
    line = json.loads(out.getvalue().splitlines()[-1])
    assert (line["event"], line["level"], line["logger"]) == ("transport closed", "warning", "grpc")


def test_auto_format_is_json_unless_the_stream_is_a_terminal() -> None:
    assert resolve_format("auto", io.StringIO()) == "json"
    assert resolve_format("console", io.StringIO()) == "console"
    with pytest.raises(ValueError, match="unknown log format"):
        resolve_format("xml", io.StringIO())
