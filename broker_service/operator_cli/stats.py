"""``leasq stats``: every queue at a glance (sizes per state, today's counts, latency, paused),
and the broker's version and Redis memory when the broker tells them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import click
from rich.console import Group, RenderableType
from rich.text import Text

from leasq_broker.operator_cli import formatting as fmt
from leasq_broker.operator_cli.command import OperatorCommand
from leasq_broker.operator_cli.context import Operator
from leasq_broker.operator_cli.output import fields, table
from leasq_sdk import Client, QueueStats
from leasq_sdk.errors import LeasqError
from leasq_sdk.operations import ServerInfo

#: Columns of the queue table, and which of them are counts.
QUEUE_COLUMNS = ("queue", "state", "pending", "scheduled", "active", "retry", "archived",
                 "completed", "aggregating", "processed today", "failed today", "latency")
COUNT_COLUMNS = QUEUE_COLUMNS[2:]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What ``stats`` (and each frame of ``dash``) shows."""

    taken_at: datetime
    queues: list[QueueStats]
    server: ServerInfo | None


def all_queue_stats(client: Client) -> list[QueueStats]:
    """Every queue's stats, listed in one call (a broker that leaves them out of the listing
    is asked queue by queue)."""
    return [q.stats or client.queue_stats(q.queue)
            for q in client.list_queues(include_stats=True)]


def take_snapshot(client: Client) -> Snapshot:
    """Every queue's stats in one call; the server info when the broker answers it (an older
    broker, or a token without the right, leaves it out rather than failing the command)."""
    queues = all_queue_stats(client)
    try:
        server: ServerInfo | None = client.server_info()
    except LeasqError:
        server = None
    return Snapshot(taken_at=datetime.now(UTC), queues=queues, server=server)


def queue_row(stats: QueueStats) -> list[Any]:
    """One line of the queue table."""
    return [stats.queue, "paused" if stats.paused else "running", stats.pending,
            stats.scheduled, stats.active, stats.retry, stats.archived, stats.completed,
            stats.aggregating, stats.processed_today, stats.failed_today,
            fmt.duration(stats.latency)]


def queue_table(queues: list[QueueStats], title: str | None = "Queues") -> RenderableType:
    if not queues:
        return Text("no queues yet (a queue appears with its first task)")
    return table(title, QUEUE_COLUMNS, (queue_row(q) for q in queues), right=COUNT_COLUMNS)


def server_lines(server: ServerInfo | None, now: datetime) -> RenderableType:
    if server is None:
        return Text("server info: not available from this broker")
    redis = server.redis
    limit = fmt.size(redis.max_memory_bytes) if redis.max_memory_bytes else "no limit"
    return fields("Broker", [
        ("version", server.version),
        ("started", fmt.instant(server.started_at, now)),
        ("redis", f"{redis.version} ({redis.mode}), up {fmt.duration(redis.uptime)}"),
        ("memory", f"{fmt.size(redis.used_memory_bytes)} used, {limit}"),
        ("clients", redis.connected_clients),
        ("aof", f"on, fsync {redis.aof_fsync}" if redis.aof_enabled else "off"),
    ])  # fmt: skip


def render(snapshot: Snapshot) -> RenderableType:
    totals = (sum(q.processed_today for q in snapshot.queues),
              sum(q.failed_today for q in snapshot.queues))
    summary = Text(f"{len(snapshot.queues)} queues; today {totals[0]} processed, "
                   f"{totals[1]} failed")
    return Group(queue_table(snapshot.queues), Text(""), summary, Text(""),
                 server_lines(snapshot.server, snapshot.taken_at))


@click.command("stats", cls=OperatorCommand)
@click.pass_obj
def stats(operator: Operator) -> None:
    """Every queue: tasks per state, processed and failed today, latency, paused; and the
    broker's version and Redis memory."""
    snapshot = take_snapshot(operator.client)
    operator.out.show({"queues": snapshot.queues, "server": snapshot.server}, render(snapshot))
