"""``leasq group``: a queue's waiting aggregation groups, their members, and flushing or
deleting one. (When groups flush is a queue setting: ``leasq queue settings``.)"""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import islice

import click
from rich.text import Text

from leasq_broker.operator_cli import formatting as fmt
from leasq_broker.operator_cli.command import OperatorGroup
from leasq_broker.operator_cli.context import Operator, confirm
from leasq_broker.operator_cli.output import table
from leasq_broker.operator_cli.task_views import task_table

GROUP_COLUMNS = ("type", "group", "size", "first joined", "last joined", "flush at")


@click.group("group", cls=OperatorGroup)
def group() -> None:
    """List aggregation groups and their members; flush or delete one."""


@group.command("ls")
@click.argument("queue")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@click.pass_obj
def list_groups(operator: Operator, queue: str, limit: int) -> None:
    """A queue's waiting groups, largest first."""
    groups = list(islice(operator.client.iter_groups(queue), limit))
    now = datetime.now(UTC)
    rows = ((g.type, g.group, g.size, fmt.instant(g.first_joined_at, now),
             fmt.instant(g.last_joined_at, now), fmt.instant(g.flush_at, now)) for g in groups)
    view = (table(f"Groups of {queue}", GROUP_COLUMNS, rows, right=("size",)) if groups
            else Text(f"no waiting groups in {queue}"))
    operator.out.show(groups, view)


@group.command("members")
@click.argument("queue")
@click.argument("type")
@click.argument("key")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@click.pass_obj
def members(operator: Operator, queue: str, type: str, key: str, limit: int) -> None:
    """The tasks waiting in one group (queue, type, key), in joining order."""
    tasks = list(islice(operator.client.iter_group_members(queue, type, key), limit))
    operator.out.show({"tasks": tasks}, task_table(tasks, f"Members of {type} {key}"))


@group.command("flush")
@click.argument("queue")
@click.argument("type")
@click.argument("key")
@click.pass_obj
def flush(operator: Operator, queue: str, type: str, key: str) -> None:
    """Flush a group now: its members become one pending task."""
    done = operator.client.flush_group(queue, type, key)
    operator.out.message(done, f"flushed group {key}: task {done.task.id} with "
                               f"{done.members} members")


@group.command("delete")
@click.argument("queue")
@click.argument("type")
@click.argument("key")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def delete(operator: Operator, queue: str, type: str, key: str, yes: bool) -> None:
    """Delete a group and its members."""
    confirm(f"Delete group {key} of {type} in {queue} and its members?", assume_yes=yes)
    deleted = operator.client.delete_group(queue, type, key)
    operator.out.message({"queue": queue, "type": type, "group": key, "deleted": deleted},
                         f"deleted group {key} ({deleted} members)")
