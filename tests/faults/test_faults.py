"""Faults mid-drain, on real processes: no confirmed task is lost, and only tasks in flight
at the fault may run twice.

Each test runs one scenario of ``fault_scenarios`` (a few hundred tasks, 2 s leases, its own
Redis, broker and worker processes); ``python -m benchmarks.fault_table`` runs the same ones
with more tasks and prints the table of docs/reliability.md.
"""

from __future__ import annotations

from pathlib import Path

from faults.fault_scenarios import FaultResult, Size, run


def _run(name: str, workdir: Path) -> FaultResult:
    result = run(name, workdir, Size())
    assert result.confirmed > 0
    assert result.ok, _describe(result)
    return result


def _describe(result: FaultResult) -> str:
    failed = [check for check, passed in result.checks.items() if not passed]
    return (f"{result.scenario}: confirmed {result.confirmed}, completed {result.completed}, "
            f"lost {result.lost} ({result.stranded} still stored), "
            f"duplicated {result.duplicated} (in flight {result.in_flight}; "
            f"outside it: {result.unexpected_duplicates[:10]}), failed checks {failed}; "
            f"{result.notes[:3]}; logs in {result.logs}")  # fmt: skip


def test_a_worker_killed_mid_drain_loses_nothing(tmp_path: Path) -> None:
    _run("kill -9 worker", tmp_path)


def test_a_broker_killed_mid_drain_and_restarted_loses_nothing(tmp_path: Path) -> None:
    _run("kill -9 broker, restart", tmp_path)


def test_redis_killed_mid_drain_and_restarted_on_its_aof_loses_nothing(tmp_path: Path) -> None:
    _run("kill -9 Redis (AOF, fsync always), restart", tmp_path)


def test_a_worker_stopped_past_its_lease_then_continued_loses_nothing(tmp_path: Path) -> None:
    _run("SIGSTOP worker past its lease, SIGCONT", tmp_path)


def test_a_broker_shut_down_under_load_hands_over_to_a_new_one_without_loss(
    tmp_path: Path,
) -> None:
    _run("SIGTERM broker under load, new broker takes over", tmp_path)


def test_a_clean_redis_restart_mid_drain_loses_nothing(tmp_path: Path) -> None:
    _run("Redis restart with persistence", tmp_path)


def test_after_redis_loses_its_data_the_broker_serves_and_its_background_work_resumes(
    tmp_path: Path,
) -> None:
    _run("Redis restart without persistence (data loss)", tmp_path)
