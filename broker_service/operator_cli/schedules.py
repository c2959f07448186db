"""``leasq schedule``: list, get, pause, resume, trigger, delete periodic schedules, and their
recent fires. Schedules are defined in code or in the broker's --schedules file; this group
operates them, it does not define them."""

from __future__ import annotations

from datetime import UTC, datetime

import click
from rich.console import Group, RenderableType
from rich.text import Text

from leasq_broker.operator_cli import formatting as fmt
from leasq_broker.operator_cli.command import OperatorGroup
from leasq_broker.operator_cli.context import Operator, confirm
from leasq_broker.operator_cli.output import fields, table
from leasq_sdk import ScheduleFire, ScheduleInfo

SCHEDULE_COLUMNS = ("name", "spec", "time zone", "type", "queue", "state", "next fire",
                    "last fire")
FIRE_COLUMNS = ("tick", "fired at", "status", "task", "task state", "missed", "error")


def _last(info: ScheduleInfo, now: datetime) -> str:
    fire = info.last_fire
    return "-" if fire is None else f"{fmt.instant(fire.fired_at, now)} {fire.status.value}"


def schedule_row(info: ScheduleInfo, now: datetime) -> list[object]:
    s = info.schedule
    return [s.name, s.spec, s.time_zone, s.type, s.queue, "paused" if s.paused else "active",
            fmt.instant(info.next_fire_at, now), _last(info, now)]


def schedule_detail(info: ScheduleInfo) -> RenderableType:
    s, now = info.schedule, datetime.now(UTC)
    payload = s.payload if isinstance(s.payload, bytes) else str(s.payload).encode()
    return Group(fields(f"Schedule {s.name}", [
        ("spec", f"{s.spec} ({s.time_zone})"), ("task", f"{s.type} on queue {s.queue}"),
        ("state", "paused" if s.paused else "active"),
        ("next fire", fmt.instant(info.next_fire_at, now)),
        ("last fire", _last(info, now)),
        ("catch up", f"{s.catch_up}, overlap {s.overlap}"),
        ("created", fmt.instant(info.created_at, now)),
        ("updated", fmt.instant(info.updated_at, now)),
    ]), Text("payload:", style="bold"), Text(fmt.payload_text(payload)))  # fmt: skip


def fire_row(fire: ScheduleFire, now: datetime) -> list[object]:
    return [fmt.instant(fire.tick, now), fmt.instant(fire.fired_at), fire.status.value,
            fire.task_id or "-", fire.task_state.value if fire.task_state else "-",
            fire.missed_count or "", fire.error]


@click.group("schedule", cls=OperatorGroup)
def schedule() -> None:
    """List and operate periodic schedules."""


@schedule.command("ls")
@click.pass_obj
def list_schedules(operator: Operator) -> None:
    """Every schedule with its next and last fire."""
    infos = operator.client.list_schedules()
    now = datetime.now(UTC)
    view = (table(None, SCHEDULE_COLUMNS, (schedule_row(i, now) for i in infos))
            if infos else Text("no schedules"))
    operator.out.show(infos, view)


@schedule.command("get")
@click.argument("name")
@click.pass_obj
def get(operator: Operator, name: str) -> None:
    """One schedule in full."""
    info = operator.client.get_schedule(name)
    operator.out.show(info, schedule_detail(info))


@schedule.command("pause")
@click.argument("name")
@click.pass_obj
def pause(operator: Operator, name: str) -> None:
    """Stop firing (ticks while paused never fire)."""
    info = operator.client.pause_schedule(name)
    operator.out.message(info, f"paused schedule {name}")


@schedule.command("resume")
@click.argument("name")
@click.pass_obj
def resume(operator: Operator, name: str) -> None:
    """Fire again from the first tick after now."""
    info = operator.client.resume_schedule(name)
    operator.out.message(info, f"resumed schedule {name}; next fire "
                               f"{fmt.instant(info.next_fire_at, datetime.now(UTC))}")


@schedule.command("trigger")
@click.argument("name")
@click.pass_obj
def trigger(operator: Operator, name: str) -> None:
    """Enqueue the schedule's task now, outside its spec."""
    task = operator.client.trigger_schedule(name)
    operator.out.message(task, f"enqueued task {task.id} on queue {task.queue}")


@schedule.command("delete")
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def delete(operator: Operator, name: str, yes: bool) -> None:
    """Delete a schedule (the tasks it fired stay). A schedule from the broker's
    --schedules file comes back when that file is read again."""
    confirm(f"Delete schedule {name}?", assume_yes=yes)
    operator.client.delete_schedule(name)
    operator.out.message({"name": name, "deleted": True}, f"deleted schedule {name}")


@schedule.command("fires")
@click.argument("name")
@click.option("--limit", type=click.IntRange(1, 50), default=20, show_default=True)
@click.pass_obj
def fires(operator: Operator, name: str, limit: int) -> None:
    """The schedule's most recent fires, newest first."""
    entries = operator.client.schedule_fires(name, limit=limit)
    now = datetime.now(UTC)
    view = (table(f"Fires of {name}", FIRE_COLUMNS, (fire_row(f, now) for f in entries),
                  right=("missed",)) if entries else Text("no fires yet"))
    operator.out.show(entries, view)
