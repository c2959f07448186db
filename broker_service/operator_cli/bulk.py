"""``leasq task run-all | archive-all | delete-all QUEUE --state S``: move or delete every task
of a state that matches a filter, after a confirmation that says what will happen."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import click

from leasq_broker.operator_cli import formatting as fmt
from leasq_broker.operator_cli.command import OperatorCommand
from leasq_broker.operator_cli.context import Operator, confirm
from leasq_broker.operator_cli.params import STATE, Span
from leasq_sdk import Client, QueueStats


def describe_filter(task_type: str | None, error_type: str | None,
                    older_than: timedelta | None) -> str:
    """The filter in words, for the confirmation question."""
    parts = []
    if task_type:
        parts.append(f"of type {task_type}")
    if error_type:
        parts.append(f"whose last error is {error_type}")
    if older_than is not None:
        parts.append(f"enqueued over {fmt.duration(older_than)} ago")
    return " ".join(parts)


def question(verb: str, queue: str, state: str, stats: QueueStats, filtered: str) -> str:
    """``Run 12 archived tasks of queue email?`` or, with a filter, how many tasks are in the
    state and which of them the filter takes."""
    count = getattr(stats, state, None)
    if not filtered:
        amount = f"all {count}" if count is not None else "all"
        return f"{verb} {amount} {state} tasks of queue {queue}?"
    held = f" (of {count} {state} tasks)" if count is not None else ""
    return f"{verb} the {state} tasks of queue {queue} {filtered}{held}?"


def _bulk(name: str, verb: str, done: str, states: str,
          call: Callable[[Client], Callable[..., int]]) -> click.Command:
    """One bulk command: ``call(client)(queue, state, type=..., ...)`` does the work."""

    def run(operator: Operator, queue: str, state: str, task_type: str | None,
            error_type: str | None, older_than: timedelta | None, yes: bool) -> None:
        filtered = describe_filter(task_type, error_type, older_than)
        stats = operator.client.queue_stats(queue)
        confirm(question(verb, queue, state, stats, filtered), assume_yes=yes)
        affected = call(operator.client)(queue, state, type=task_type, error_type=error_type,
                                         older_than=older_than)
        result: dict[str, Any] = {"queue": queue, "state": state, "affected": affected}
        operator.out.message(result, f"{done} {affected} {state} tasks of {queue}")

    options = [
        click.Argument(["queue"]),
        click.Option(["--state"], type=STATE, required=True, help=f"The state: {states}."),
        click.Option(["--type", "task_type"], help="Only tasks of this type."),
        click.Option(["--error-type"], help="Only tasks whose last error has this type."),
        click.Option(["--older-than"], type=Span(),
                     help="Only tasks enqueued at least this long ago (e.g. 1h)."),
        click.Option(["--yes", "-y"], is_flag=True, help="Do not ask for confirmation."),
    ]
    return OperatorCommand(
        name, callback=click.pass_obj(run), params=options,
        help=f"{verb} every {states} task of QUEUE in --state that matches the filters; asks "
        "first unless --yes.",
    )  # fmt: skip


run_all = _bulk("run-all", "Run", "ran", "scheduled, retry or archived",
                lambda client: client.run_all)
archive_all = _bulk("archive-all", "Archive", "archived", "pending, scheduled or retry",
                    lambda client: client.archive_all)
delete_all = _bulk("delete-all", "Delete", "deleted",
                   "pending, scheduled, retry, archived or completed",
                   lambda client: client.delete_all)
