"""Fault scenarios: drain tasks through real processes, break one of them, count the damage.

Each scenario enqueues tasks with ids, lets two worker processes drain them, strikes once
mid-drain, waits for the drain to finish, and counts: **confirmed** (the broker acknowledged
the enqueue), **completed** (confirmed tasks whose handler ran to its end), **lost** (confirmed,
never completed), **duplicated** (completed more than once) and **in flight** (leased while the
fault lasted, sampled from Redis every 20 ms: the only tasks allowed to run twice). Used by
``tests/faults`` (small counts) and ``benchmarks/fault_table.py`` (larger ones).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from broker_process import ProcessStartError
from faults.fault_lab import QUEUE, TASK_TYPE, ActiveSampler, FaultLab, wait_until
from google.protobuf.duration_pb2 import Duration

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc
from leasq_sdk import Client, LeasqError, TaskIdConflict


@dataclass(frozen=True)
class Size:
    tasks: int = 300
    concurrency: int = 4
    recovery: float = 45.0  # seconds the drain may take after the fault


@dataclass
class FaultResult:
    scenario: str
    confirmed: int
    completed: int
    lost: int | None  # None: lost tasks are not counted (the scenario loses data on purpose)
    duplicated: int
    in_flight: int
    unexpected_duplicates: list[str]
    stranded: int = 0  # of the lost: still stored in the broker, not run (e.g. no worker left)
    checks: dict[str, bool] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    logs: Path | None = None

    @property
    def ok(self) -> bool:
        return (self.lost in (0, None) and not self.unexpected_duplicates
                and all(self.checks.values()))  # fmt: skip


def tally(name: str, lab: FaultLab, confirmed: set[str], in_flight: set[str],
          count_lost: bool = True) -> FaultResult:  # fmt: skip
    runs = lab.completions()
    completed = {task_id for task_id in confirmed if runs[task_id] > 0}
    doubled = {task_id for task_id, count in runs.items() if count > 1}
    missing = confirmed - completed
    return FaultResult(
        scenario=name, confirmed=len(confirmed), completed=len(completed),
        lost=len(missing) if count_lost else None, duplicated=len(doubled),
        in_flight=len(in_flight),
        unexpected_duplicates=sorted(doubled - in_flight) if count_lost else [],
        stranded=len(lab.stored(missing)) if count_lost else 0, logs=lab.workdir,
    )  # fmt: skip


def task_ids(count: int, prefix: str = "t") -> list[str]:
    return [f"{prefix}-{i:06d}" for i in range(count)]


def _start_draining(lab: FaultLab, size: Size) -> set[str]:
    """Enqueue the tasks, start workers A and B, return once a third of them completed."""
    confirmed = lab.enqueue(task_ids(size.tasks))
    lab.worker("A", size.concurrency)
    lab.worker("B", size.concurrency)
    wait_until(lambda: len(lab.completions()) >= len(confirmed) // 3, 60, "no drain")
    return confirmed


def _drain_through(name: str, workdir: Path, size: Size,
                   fault: Callable[[FaultLab], set[str]], persistent: bool = True,
                   ) -> FaultResult:  # fmt: skip
    """The common shape: drain, strike, drain to the end (or to the recovery limit), count."""
    lab = FaultLab(workdir, persistent=persistent)
    try:
        confirmed = _start_draining(lab, size)
        in_flight = fault(lab)
        lab.wait_completed(confirmed, size.recovery)
        checks = {f"worker {w.name} exits 0": w.stop() == 0 for w in lab.workers
                  if w.process.poll() is None}  # fmt: skip
        result = tally(name, lab, confirmed, in_flight)
        result.checks.update(checks)
        return result
    finally:
        lab.close()


def kill_worker(lab: FaultLab) -> set[str]:
    with ActiveSampler(lab, "A") as sampler:
        lab.workers[0].kill()
    return sampler.seen


def pause_worker_past_its_lease(lab: FaultLab) -> set[str]:
    with ActiveSampler(lab, "A") as sampler:
        lab.workers[0].send(signal.SIGSTOP)
        time.sleep(lab.lease + 2.0)
        lab.workers[0].send(signal.SIGCONT)
    return sampler.seen


def kill_broker(lab: FaultLab) -> set[str]:
    with ActiveSampler(lab) as sampler:
        lab.broker.kill()
        time.sleep(1.0)
        lab.broker.start()
    return sampler.seen


def kill_redis(lab: FaultLab) -> set[str]:
    with ActiveSampler(lab) as sampler:
        lab.data.kill()
        time.sleep(1.0)
        lab.data.start()
    return sampler.seen


def restart_redis_cleanly(lab: FaultLab) -> set[str]:
    with ActiveSampler(lab) as sampler:
        lab.data.stop()
        lab.data.start()
    return sampler.seen


class Producer(threading.Thread):
    """Enqueues the given ids one call each, at a steady pace, through the SDK (which retries
    an enqueue with a task_id); a TaskIdConflict means an earlier attempt landed."""

    def __init__(self, address: str, ids: list[str], seconds: float) -> None:
        super().__init__(daemon=True)
        self.address, self.ids, self.pause = address, ids, seconds / max(len(ids), 1)
        self.confirmed: set[str] = set()
        self.refused: dict[str, str] = {}
        self.sent = 0

    def run(self) -> None:
        with Client(self.address, timeout=15) as client:
            for task_id in self.ids:
                try:
                    client.enqueue(TASK_TYPE, b"", queue=QUEUE, task_id=task_id)
                    self.confirmed.add(task_id)
                except TaskIdConflict:
                    self.confirmed.add(task_id)
                except LeasqError as error:
                    self.refused[task_id] = f"{type(error).__name__}: {error}"
                self.sent += 1
                time.sleep(self.pause)


def _take_over(lab: FaultLab) -> bool:
    """SIGTERM the broker and start a new one on its address once the port is free."""
    old = lab.broker
    assert old.process is not None
    old.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            lab.broker = lab.new_broker(listen=old.address)
            break
        except ProcessStartError:
            time.sleep(0.1)
    return old.process.wait(lab.grace + 15) == 0


def graceful_takeover(name: str, workdir: Path, size: Size) -> FaultResult:
    """SIGTERM under enqueue and drain load; a new broker takes over the address."""
    lab = FaultLab(workdir)
    try:
        ids = task_ids(size.tasks)
        prefilled = lab.enqueue(ids[: size.tasks // 4])
        producer = Producer(lab.broker.address, ids[size.tasks // 4 :], seconds=size.tasks / 80)
        producer.start()
        lab.worker("A", size.concurrency)
        lab.worker("B", size.concurrency)
        wait_until(lambda: producer.sent >= size.tasks // 4, 60, "the producer is stuck")
        with ActiveSampler(lab) as sampler:
            old_exit_ok = _take_over(lab)
        producer.join(size.recovery)
        confirmed = prefilled | producer.confirmed
        lab.wait_completed(confirmed, size.recovery)
        result = tally(name, lab, confirmed, sampler.seen)
        result.checks["old broker exits 0"] = old_exit_ok
        result.checks["every enqueue confirmed"] = not producer.refused
        result.notes += [f"enqueue of {i} refused: {why}" for i, why in producer.refused.items()]
        result.checks.update({f"worker {w.name} exits 0": w.stop() == 0 for w in lab.workers})
        return result
    finally:
        lab.close()


def _lease_and_abandon(lab: FaultLab, queue: str, task_id: str) -> None:
    with Client(lab.broker.address, timeout=10) as client:
        client.enqueue(TASK_TYPE, b"", queue=queue, task_id=task_id)
    with grpc.insecure_channel(lab.broker.address) as channel:
        stub = broker_service_pb2_grpc.BrokerServiceStub(channel)
        stub.Lease(pb.LeaseRequest(worker_id="abandoner", queues=[pb.QueueWeight(queue=queue)],
                                   lease_duration=Duration(seconds=1)), timeout=10)  # fmt: skip


def _after_data_loss(lab: FaultLab) -> dict[str, bool]:
    """What must still work once Redis came back empty."""
    checks: dict[str, bool] = {}
    with Client(lab.broker.address, timeout=10) as client:
        try:
            client.enqueue(TASK_TYPE, b"", queue=QUEUE, task_id="after-loss",
                           process_in=1.0)  # fmt: skip
            checks["enqueue after the loss"] = True
        except LeasqError:
            checks["enqueue after the loss"] = False
        checks["scheduled task after the loss runs"] = lab.wait_completed({"after-loss"}, 15)
        try:
            _lease_and_abandon(lab, "faults-orphans", "orphan")
            checks["expired lease after the loss is reclaimed"] = wait_until(
                lambda: client.get_task("faults-orphans", "orphan").lease_lost_count >= 1, 15
            )
        except (LeasqError, grpc.RpcError):
            checks["expired lease after the loss is reclaimed"] = False
    return checks


def redis_data_loss(name: str, workdir: Path, size: Size) -> FaultResult:
    """Redis without persistence restarts empty: lost tasks are not counted; the broker must
    keep serving and its background work must resume for tasks enqueued afterwards."""
    lab = FaultLab(workdir, persistent=False)
    try:
        confirmed = _start_draining(lab, size)
        with ActiveSampler(lab) as sampler:
            lab.data.stop()
            lab.data.start()
        checks = _after_data_loss(lab)
        result = tally(name, lab, confirmed, sampler.seen, count_lost=False)
        result.checks.update(checks)
        result.checks["broker still running"] = lab.broker.running
        return result
    finally:
        lab.close()


Scenario = Callable[[str, Path, Size], FaultResult]


def _through(fault: Callable[[FaultLab], set[str]]) -> Scenario:
    return lambda name, workdir, size: _drain_through(name, workdir, size, fault)


SCENARIOS: dict[str, Scenario] = {
    "kill -9 worker": _through(kill_worker),
    "kill -9 broker, restart": _through(kill_broker),
    "kill -9 Redis (AOF, fsync always), restart": _through(kill_redis),
    "SIGSTOP worker past its lease, SIGCONT": _through(pause_worker_past_its_lease),
    "SIGTERM broker under load, new broker takes over": graceful_takeover,
    "Redis restart with persistence": _through(restart_redis_cleanly),
    "Redis restart without persistence (data loss)": redis_data_loss,
}


def run(name: str, workdir: Path, size: Size) -> FaultResult:
    started = time.monotonic()
    result = SCENARIOS[name](name, workdir, size)
    result.seconds = time.monotonic() - started
    return result
