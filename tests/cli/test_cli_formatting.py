"""What the operator commands print and parse: spans, payloads, JSON of SDK values."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from leasq_broker.operator_cli import formatting as fmt
from leasq_broker.operator_cli.dash import rates
from leasq_broker.operator_cli.params import parse_span
from leasq_broker.operator_cli.stats import Snapshot
from leasq_sdk import QueueStats


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 90), ("1.5", 1.5), ("500ms", 0.5), ("10s", 10), ("1h30m", 5400), ("2d", 172_800),
])  # fmt: skip
def test_spans_are_read_with_or_without_units(text: str, seconds: float) -> None:
    assert parse_span(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "soon", "10x", "1h oops", "h"])
def test_malformed_spans_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a span"):
        parse_span(text)


@pytest.mark.parametrize(("seconds", "shown"), [
    (0.25, "250ms"), (12, "12s"), (12.5, "12.5s"), (245, "4m05s"), (7380, "2h03m"),
    (273_600, "3d04h"),
])  # fmt: skip
def test_durations_read_as_people_say_them(seconds: float, shown: str) -> None:
    assert fmt.duration(timedelta(seconds=seconds)) == shown


def test_payloads_are_pretty_json_escaped_text_or_hex() -> None:
    assert fmt.payload_text(b'{"a":[1,2]}') == '{\n  "a": [\n    1,\n    2\n  ]\n}'
    assert fmt.payload_text(b'{"a":[1,2]}', limit=40) == '{"a":[1,2]}'
    assert fmt.payload_text(b"line\nnext") == "line\\nnext"
    assert fmt.payload_text(b"\xff\x00") == "hex: ff 00"
    assert fmt.payload_text(b"") == "(empty)"
    assert fmt.payload_text(b"x" * 100, limit=10) == "xxxxxxx..."


def test_json_of_sdk_values_has_iso_instants_seconds_and_base64() -> None:
    value = {"at": datetime(2026, 12, 1, 9, 30, tzinfo=UTC), "span": timedelta(minutes=2),
             "raw": b"\x00\x01"}
    assert json.loads(fmt.dumps(value)) == {"at": "2026-12-01T09:30:00Z", "span": 120.0,
                                            "raw": "AAE="}


def stats(queue: str, processed: int, failed: int) -> QueueStats:
    return QueueStats(queue=queue, paused=False, pending=0, scheduled=0, active=0, retry=0,
                      archived=0, completed=0, aggregating=0, processed_today=processed,
                      failed_today=failed, processed_total=processed, failed_total=failed,
                      latency=timedelta(0))


def test_dash_rates_are_the_totals_difference_per_second_between_frames() -> None:
    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    before = Snapshot(t0, [stats("q", 100, 10)], None)
    after = Snapshot(t0 + timedelta(seconds=2), [stats("q", 150, 14), stats("new", 5, 0)],
                     None)
    assert rates(None, after) == {}
    assert rates(before, after) == {"q": (25.0, 2.0)}
