"""``leasq worker ls | quiet ID | stop ID``: the live workers, and telling one to stop leasing
(quiet) or to shut down (stop). ``leasq worker MODULE:REGISTRY`` (running a worker) is the
worker runtime's command, dispatched before this group."""

from __future__ import annotations

from datetime import UTC, datetime

import click
from rich.console import Group, RenderableType
from rich.text import Text

from leasq_broker.operator_cli import formatting as fmt
from leasq_broker.operator_cli.command import OperatorGroup
from leasq_broker.operator_cli.context import Operator
from leasq_broker.operator_cli.output import table
from leasq_sdk.workers import WorkerInfo

WORKER_COLUMNS = ("id", "host", "pid", "sdk", "queues", "busy", "started", "last seen",
                  "command")


def _queues(worker: WorkerInfo) -> str:
    text = ", ".join(f"{q}:{w}" if w > 1 else q for q, w in worker.queues)
    return f"{text} (strict)" if worker.strict and text else text


def worker_row(worker: WorkerInfo, now: datetime) -> list[object]:
    busy = f"{len(worker.tasks)}/{worker.concurrency}" if worker.concurrency else len(worker.tasks)
    return [worker.worker_id, worker.host or "-", worker.pid or "-", worker.sdk or "-",
            _queues(worker) or "-", busy, fmt.instant(worker.started_at, now),
            fmt.instant(worker.last_seen_at, now), worker.command.value]


def workers_view(workers: list[WorkerInfo]) -> RenderableType:
    if not workers:
        return Text("no live workers (none called Lease or Heartbeat lately)")
    now = datetime.now(UTC)
    parts: list[RenderableType] = [table(None, WORKER_COLUMNS,
                                         (worker_row(w, now) for w in workers))]
    held = [(w.worker_id, t) for w in workers for t in w.tasks]
    if held:
        parts += [Text(""), table("Tasks held", ("worker", "queue", "task", "type", "leased",
                                                  "lease expires"),
                                  ((wid, t.queue, t.task_id, t.type,
                                    fmt.instant(t.leased_at, now),
                                    fmt.instant(t.lease_expires_at, now)) for wid, t in held))]
    return Group(*parts)


@click.group("worker", cls=OperatorGroup,
             short_help="Run a worker; list, quiet or stop workers.")
def worker() -> None:
    """List live workers, quiet or stop one. (`leasq worker MODULE:REGISTRY ...` runs a
    worker: see `leasq worker --help`.)"""


@worker.command("ls")
@click.pass_obj
def list_workers(operator: Operator) -> None:
    """Every worker that called Lease or Heartbeat lately (the broker's --worker-ttl), with
    the tasks it holds."""
    workers = operator.client.list_workers()
    operator.out.show(workers, workers_view(workers))


@worker.command("quiet")
@click.argument("worker_id")
@click.pass_obj
def quiet(operator: Operator, worker_id: str) -> None:
    """Tell a worker to lease no more tasks (it finishes those it holds and stays up)."""
    info = operator.client.quiet_worker(worker_id)
    operator.out.message(info, f"worker {worker_id} told to quiet "
                               f"({len(info.tasks)} tasks still held)")


@worker.command("stop")
@click.argument("worker_id")
@click.pass_obj
def stop(operator: Operator, worker_id: str) -> None:
    """Tell a worker to finish its tasks within its grace and exit."""
    info = operator.client.stop_worker(worker_id)
    operator.out.message(info, f"worker {worker_id} told to stop "
                               f"({len(info.tasks)} tasks still held)")
