"""``leasq task run-all | archive-all | delete-all``: nothing moves until confirmed."""

from __future__ import annotations

from cli_testing import Leasq, one_error_line

from leasq_sdk import Client


def archived(client: Client, queue: str, type: str, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        task_id = client.enqueue(type, b"", queue=queue).id
        client.archive(queue, task_id)
        ids.append(task_id)
    return ids


def test_run_all_asks_and_does_nothing_when_the_answer_is_no(
    leasq: Leasq, client: Client
) -> None:
    archived(client, "q", "t", 3)
    run = leasq("task", "run-all", "q", "--state", "archived", input="n\n")
    assert run.code == 1
    assert "Run all 3 archived tasks of queue q?" in run.stderr
    assert "not confirmed" in run.stderr
    assert client.queue_stats("q").archived == 3


def test_run_all_without_an_answer_on_stdin_refuses(leasq: Leasq, client: Client) -> None:
    archived(client, "q", "t", 2)
    run = leasq("task", "run-all", "q", "--state", "archived", input="")
    assert run.code == 1
    assert "pass --yes" in run.stderr
    assert client.queue_stats("q").archived == 2


def test_run_all_moves_every_task_once_confirmed(leasq: Leasq, client: Client) -> None:
    archived(client, "q", "t", 3)
    run = leasq("task", "run-all", "q", "--state", "archived", input="y\n").ok()
    assert "ran 3 archived tasks of q" in run.stdout
    stats = client.queue_stats("q")
    assert (stats.archived, stats.pending) == (0, 3)


def test_filters_are_shown_in_the_question_and_applied(leasq: Leasq, client: Client) -> None:
    keep = archived(client, "q", "keep", 2)
    archived(client, "q", "drop", 3)
    run = leasq("task", "delete-all", "q", "--state", "archived", "--type", "drop",
                input="n\n")
    assert "Delete the archived tasks of queue q of type drop (of 5 archived tasks)?" in run.stderr
    done = leasq("--json", "task", "delete-all", "q", "--state", "archived", "--type", "drop",
                 "--yes").json()
    assert done == {"queue": "q", "state": "archived", "affected": 3}
    assert sorted(t.id for t in client.iter_tasks("q", "archived")) == sorted(keep)


def test_archive_all_with_older_than_leaves_newer_tasks(leasq: Leasq, client: Client) -> None:
    for _ in range(2):
        client.enqueue("t", b"", queue="q")
    done = leasq("--json", "task", "archive-all", "q", "--state", "pending", "--older-than",
                 "1h", "--yes").json()
    assert done["affected"] == 0
    assert client.queue_stats("q").pending == 2
    done = leasq("--json", "task", "archive-all", "q", "--state", "pending", "--yes").json()
    assert done["affected"] == 2
    assert client.queue_stats("q").archived == 2


def test_a_state_the_operation_does_not_apply_to_is_refused(
    leasq: Leasq, client: Client
) -> None:
    client.enqueue("t", b"", queue="q")
    run = leasq("task", "run-all", "q", "--state", "pending", "--yes")
    assert run.code == 2  # the broker's INVALID_ARGUMENT: a usage error
    assert "state" in one_error_line(run)
    assert client.queue_stats("q").pending == 1
