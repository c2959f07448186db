"""``leasq dash``: a live view of every queue (sizes, processing rates, latency), redrawn every
``--interval`` seconds until Ctrl-C; ``--once`` prints one frame and exits (for scripts and
tests). Rates are measured between two frames from the queues' processed and failed totals,
so the first frame has none."""

from __future__ import annotations

import time
from collections.abc import Mapping

import click
from rich.console import Group, RenderableType
from rich.live import Live
from rich.text import Text

from leasq_broker.operator_cli import formatting as fmt
from leasq_broker.operator_cli.command import OperatorCommand
from leasq_broker.operator_cli.context import Operator
from leasq_broker.operator_cli.output import table
from leasq_broker.operator_cli.stats import Snapshot, server_lines, take_snapshot

#: Short headers: the dashboard should fit an 80-column terminal.
DASH_COLUMNS = ("queue", "state", "pending", "active", "sched", "retry", "archived", "aggr",
                "done/s", "fail/s", "latency")


def rates(previous: Snapshot | None, current: Snapshot) -> dict[str, tuple[float, float]]:
    """Per queue, (processed, failed) per second since ``previous``; empty without one."""
    if previous is None:
        return {}
    seconds = (current.taken_at - previous.taken_at).total_seconds()
    if seconds <= 0:
        return {}
    before = {q.queue: q for q in previous.queues}
    result: dict[str, tuple[float, float]] = {}
    for q in current.queues:
        old = before.get(q.queue)
        if old is not None:
            result[q.queue] = (max(0, q.processed_total - old.processed_total) / seconds,
                               max(0, q.failed_total - old.failed_total) / seconds)
    return result


def frame(snapshot: Snapshot, per_second: Mapping[str, tuple[float, float]]) -> RenderableType:
    """One screen of the dashboard."""
    rows = []
    for q in snapshot.queues:
        done, failed = per_second.get(q.queue, (None, None))
        rows.append([q.queue, "paused" if q.paused else "running", q.pending, q.active,
                     q.scheduled, q.retry, q.archived, q.aggregating,
                     "-" if done is None else f"{done:.1f}",
                     "-" if failed is None else f"{failed:.1f}", fmt.duration(q.latency)])
    header = Text(f"leasq dash  {fmt.instant(snapshot.taken_at)} UTC  "
                  f"{len(snapshot.queues)} queues", style="bold")
    queues = (table(None, DASH_COLUMNS, rows, right=DASH_COLUMNS[2:]) if rows
              else Text("no queues yet"))
    return Group(header, Text(""), queues, Text(""),
                 server_lines(snapshot.server, snapshot.taken_at))


@click.command("dash", cls=OperatorCommand)
@click.option("--interval", type=click.FloatRange(min=0.2), default=1.0, show_default=True,
              help="Seconds between frames.")
@click.option("--once", is_flag=True, help="Print one frame and exit.")
@click.pass_obj
def dash(operator: Operator, interval: float, once: bool) -> None:
    """A live view of every queue; Ctrl-C to leave."""
    client = operator.client
    snapshot = take_snapshot(client)
    if once:
        operator.out.show({"queues": snapshot.queues, "server": snapshot.server},
                          frame(snapshot, {}))
        return
    with Live(frame(snapshot, {}), console=operator.out.console, screen=False,
              auto_refresh=False) as live:
        try:
            while True:
                time.sleep(interval)  # the refresh period itself, not a synchronisation
                previous, snapshot = snapshot, take_snapshot(client)
                live.update(frame(snapshot, rates(previous, snapshot)), refresh=True)
        except KeyboardInterrupt:
            return
