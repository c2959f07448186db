"""``leasq task``: list, get, enqueue, search, and move one task (run, archive, delete,
cancel); the bulk moves live in :mod:`.bulk`."""

from __future__ import annotations

from datetime import timedelta
from itertools import islice

import click

from leasq_broker.operator_cli import bulk
from leasq_broker.operator_cli.command import OperatorGroup
from leasq_broker.operator_cli.context import Operator
from leasq_broker.operator_cli.formatting import instant
from leasq_broker.operator_cli.output import fields
from leasq_broker.operator_cli.params import STATE, Header, Span, read_payload
from leasq_broker.operator_cli.task_views import task_detail, task_table
from leasq_sdk import TaskInfo


@click.group("task", cls=OperatorGroup)
def task() -> None:
    """List, inspect, enqueue, search and move tasks."""


@task.command("ls")
@click.argument("queue")
@click.option("--state", type=STATE, required=True, help="The state to list.")
@click.option("--page-size", type=click.IntRange(1, 1000), default=100, show_default=True,
              help="Tasks per call to the broker.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True,
              help="Show at most this many tasks (oldest first).")
@click.pass_obj
def list_tasks(operator: Operator, queue: str, state: str, page_size: int, limit: int) -> None:
    """A queue's tasks in one state, oldest first."""
    tasks: list[TaskInfo] = []
    token, total = "", 0
    while len(tasks) < limit:
        page = operator.client.list_tasks(queue, state, page_size=min(page_size, limit),
                                          page_token=token)
        tasks += page.tasks[: limit - len(tasks)]
        token, total = page.next_page_token, page.total_size
        if not token:
            break
    title = f"{state} tasks of {queue}: {len(tasks)} shown of {total}"
    operator.out.show({"tasks": tasks, "total_size": total},
                      task_table(tasks, title))


@task.command("get")
@click.argument("queue")
@click.argument("task_id")
@click.pass_obj
def get(operator: Operator, queue: str, task_id: str) -> None:
    """Everything recorded about one task, its payload pretty-printed."""
    info = operator.client.get_task(queue, task_id)
    operator.out.show(info, task_detail(info))


def _moved(operator: Operator, verb: str, queue: str, task_id: str, state: str) -> None:
    operator.out.message({"queue": queue, "id": task_id, "state": state},
                         f"{verb} task {task_id} of {queue}: now {state}")


@task.command("run")
@click.argument("queue")
@click.argument("task_id")
@click.pass_obj
def run(operator: Operator, queue: str, task_id: str) -> None:
    """Make a scheduled, retry or archived task pending now."""
    info = operator.client.run(queue, task_id)
    _moved(operator, "ran", queue, task_id, info.state.value)


@task.command("archive")
@click.argument("queue")
@click.argument("task_id")
@click.pass_obj
def archive(operator: Operator, queue: str, task_id: str) -> None:
    """Archive a pending, scheduled or retry task."""
    info = operator.client.archive(queue, task_id)
    _moved(operator, "archived", queue, task_id, info.state.value)


@task.command("delete")
@click.argument("queue")
@click.argument("task_id")
@click.pass_obj
def delete(operator: Operator, queue: str, task_id: str) -> None:
    """Delete a task that is not active."""
    operator.client.delete(queue, task_id)
    _moved(operator, "deleted", queue, task_id, "deleted")


@task.command("cancel")
@click.argument("queue")
@click.argument("task_id")
@click.pass_obj
def cancel(operator: Operator, queue: str, task_id: str) -> None:
    """Ask the worker running an active task to stop it."""
    info = operator.client.cancel(queue, task_id)
    _moved(operator, "cancel requested for", queue, task_id, info.state.value)


@task.command("enqueue")
@click.argument("queue")
@click.argument("type")
@click.option("--payload", default=None, metavar="JSON|@FILE",
              help="JSON payload, or @path / @- to read it; sent compact with "
              "content-type application/json.")
@click.option("--raw", is_flag=True, help="Send --payload's bytes as they are, not as JSON.")
@click.option("--header", "headers", type=Header(), multiple=True, help="A header (repeat).")
@click.option("--process-in", type=Span(), help="Run no earlier than this from now (e.g. 10s).")
@click.option("--task-id", help="Your own id (the enqueue is then idempotent).")
@click.option("--group", help="Aggregation group key.")
@click.option("--max-retry", type=click.IntRange(min=0), help="Retries before archiving.")
@click.option("--timeout", "task_timeout", type=Span(), help="Per-attempt time limit.")
@click.option("--unique", type=Span(), help="Refuse an equal task for this long.")
@click.option("--retention", type=Span(), help="Keep the completed task this long.")
@click.pass_obj
def enqueue(operator: Operator, queue: str, type: str, payload: str | None, raw: bool,
            headers: tuple[tuple[str, str], ...], process_in: timedelta | None,
            task_id: str | None, group: str | None, max_retry: int | None,
            task_timeout: timedelta | None, unique: timedelta | None,
            retention: timedelta | None) -> None:
    """Add a task of TYPE to QUEUE."""
    body = b"" if payload is None else read_payload(payload, raw=raw)
    result = operator.client.enqueue(
        type, body, queue=queue, headers=dict(headers) or None, process_in=process_in,
        task_id=task_id, group=group, max_retry=max_retry, timeout=task_timeout,
        unique=unique, retention=retention,
    )  # fmt: skip
    operator.out.show(result, fields("Enqueued", [
        ("id", result.id), ("queue", result.queue), ("state", result.state.value),
        ("runs at", instant(result.next_process_at)),
    ]))  # fmt: skip


@task.command("search")
@click.argument("queue")
@click.option("--state", type=STATE, required=True, help="The state to search.")
@click.option("--id-prefix", default="", help="Ids starting with this.")
@click.option("--type", "task_type", default="", help="Tasks of this type.")
@click.option("--payload-contains", default="", help="Payloads containing this text.")
@click.option("--error-type", default="", help="Tasks whose last error has this type.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True,
              help="Stop after this many matches.")
@click.pass_obj
def search(operator: Operator, queue: str, state: str, id_prefix: str, task_type: str,
           payload_contains: str, error_type: str, limit: int) -> None:
    """Tasks of one state matching every criterion given."""
    matches = operator.client.iter_search(
        queue, state, id_prefix=id_prefix, type=task_type,
        payload_contains=payload_contains, error_type=error_type,
    )  # fmt: skip
    tasks = list(islice(matches, limit))
    operator.out.show({"tasks": tasks},
                      task_table(tasks, f"{len(tasks)} matching {state} tasks of {queue}"))


for _command in (bulk.run_all, bulk.archive_all, bulk.delete_all):
    task.add_command(_command)
