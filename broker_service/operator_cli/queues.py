"""``leasq queue``: list, inspect, history, pause, resume, delete, and the group settings."""

from __future__ import annotations

from datetime import timedelta

import click

from leasq_broker.operator_cli import formatting as fmt
from leasq_broker.operator_cli.command import OperatorGroup
from leasq_broker.operator_cli.context import Operator, confirm
from leasq_broker.operator_cli.errors import CommandError, ExitCode
from leasq_broker.operator_cli.output import fields, table
from leasq_broker.operator_cli.params import Span
from leasq_broker.operator_cli.stats import (
    COUNT_COLUMNS,
    QUEUE_COLUMNS,
    all_queue_stats,
    queue_row,
)
from leasq_sdk.groups import DEFAULT, QueueSettings, Setting, SizeSetting


@click.group("queue", cls=OperatorGroup)
def queue() -> None:
    """List, inspect, pause, resume and delete queues; read and change their settings."""


@queue.command("ls")
@click.pass_obj
def list_queues(operator: Operator) -> None:
    """Every queue with its sizes per state."""
    queues = all_queue_stats(operator.client)
    operator.out.show(queues, table(None, QUEUE_COLUMNS, (queue_row(q) for q in queues),
                                    right=COUNT_COLUMNS))


@queue.command("inspect")
@click.argument("name")
@click.pass_obj
def inspect(operator: Operator, name: str) -> None:
    """One queue: sizes per state, today's and all-time counts, latency, memory."""
    s = operator.client.queue_stats(name)
    operator.out.show(s, fields(f"Queue {name}", [
        ("state", "paused" if s.paused else "running"),
        ("pending", s.pending), ("scheduled", s.scheduled), ("active", s.active),
        ("retry", s.retry), ("archived", s.archived), ("completed", s.completed),
        ("aggregating", s.aggregating),
        ("processed", f"{s.processed_today} today, {s.processed_total} in all"),
        ("failed", f"{s.failed_today} today, {s.failed_total} in all"),
        ("latency", fmt.duration(s.latency)),
        ("memory", fmt.size(s.memory_bytes)),
    ]))  # fmt: skip


@queue.command("history")
@click.argument("name")
@click.option("--days", type=click.IntRange(1, 90), default=7, show_default=True,
              help="How many UTC days, today first.")
@click.pass_obj
def history(operator: Operator, name: str, days: int) -> None:
    """Processed and failed tasks per day."""
    h = operator.client.queue_history(name, days=days)
    rows = [(d.date.isoformat(), d.processed, d.failed,
             f"{100 * d.failed / d.processed:.1f}%" if d.processed else "-") for d in h.days]
    rows.append(("all time", h.processed_total, h.failed_total, ""))
    operator.out.show(h, table(f"History of {name}", ("date", "processed", "failed",
                                                      "failure rate"), rows,
                               right=("processed", "failed", "failure rate")))


@queue.command("pause")
@click.argument("name")
@click.pass_obj
def pause(operator: Operator, name: str) -> None:
    """Stop leasing from a queue (enqueue still works)."""
    operator.client.pause(name)
    operator.out.message({"queue": name, "paused": True}, f"paused queue {name}")


@queue.command("resume")
@click.argument("name")
@click.pass_obj
def resume(operator: Operator, name: str) -> None:
    """Lease from a paused queue again."""
    operator.client.resume(name)
    operator.out.message({"queue": name, "paused": False}, f"resumed queue {name}")


@queue.command("delete")
@click.argument("name")
@click.option("--force", is_flag=True, help="Delete the queue's tasks too (not active ones).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def delete(operator: Operator, name: str, force: bool, yes: bool) -> None:
    """Delete a queue: an empty one, or with --force one that still holds tasks."""
    if force:
        s = operator.client.queue_stats(name)
        held = s.pending + s.scheduled + s.retry + s.archived + s.completed + s.aggregating
        confirm(f"Delete queue {name} and its {held} tasks?", assume_yes=yes)
    deleted = operator.client.delete_queue(name, force=force)
    operator.out.message({"queue": name, "deleted_tasks": deleted},
                         f"deleted queue {name} ({deleted} tasks deleted)")


def _settings_fields(settings: QueueSettings) -> list[tuple[str, str | int]]:
    g = settings.groups
    return [("group grace", fmt.duration(g.grace_period)),
            ("group max delay", fmt.duration(g.max_delay)),
            ("group max size", g.max_size)]


def _span_or_default(value: timedelta | None, reset: bool, name: str) -> Setting | None:
    if reset and value is not None:
        raise CommandError(f"--{name} and --reset-{name} exclude each other", ExitCode.USAGE)
    return DEFAULT if reset else value


@queue.command("settings")
@click.argument("name")
@click.option("--group-grace", type=Span(), help="Flush a group quiet this long (e.g. 5s).")
@click.option("--group-max-delay", type=Span(),
              help="Flush a group whose first member waited this long (e.g. 1m).")
@click.option("--group-max-size", type=click.IntRange(min=1),
              help="Flush a group of this many members.")
@click.option("--reset-group-grace", is_flag=True, help="Back to the broker's default.")
@click.option("--reset-group-max-delay", is_flag=True, help="Back to the broker's default.")
@click.option("--reset-group-max-size", is_flag=True, help="Back to the broker's default.")
@click.pass_obj
def settings(operator: Operator, name: str, group_grace: timedelta | None,
             group_max_delay: timedelta | None, group_max_size: int | None,
             reset_group_grace: bool, reset_group_max_delay: bool,
             reset_group_max_size: bool) -> None:
    """Show a queue's settings; with options, change those given and show the result."""
    grace = _span_or_default(group_grace, reset_group_grace, "group-grace")
    delay = _span_or_default(group_max_delay, reset_group_max_delay, "group-max-delay")
    if reset_group_max_size and group_max_size is not None:
        raise CommandError("--group-max-size and --reset-group-max-size exclude each other",
                           ExitCode.USAGE)
    size: SizeSetting | None = DEFAULT if reset_group_max_size else group_max_size
    if grace is None and delay is None and size is None:
        result = operator.client.queue_settings(name)
    else:
        result = operator.client.update_queue_settings(
            name, group_grace=grace, group_max_delay=delay, group_max_size=size)
    operator.out.show(result, fields(f"Settings of {name}", _settings_fields(result)))
