"""``leasq task``: enqueue, list, get, and moving one task, against a real broker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from cli_testing import Leasq, one_error_line

from leasq_sdk import Client, TaskState


def test_enqueue_sends_the_json_payload_headers_and_options_given(
    leasq: Leasq, client: Client
) -> None:
    before = datetime.now(UTC)
    answer = leasq("--json", "task", "enqueue", "email", "email:welcome",
                   "--payload", '{"user_id": 42}', "--header", "tenant=acme",
                   "--process-in", "10m", "--task-id", "welcome-42", "--max-retry", "3").json()
    assert answer["id"] == "welcome-42"
    assert answer["state"] == "scheduled"
    task = client.get_task("email", "welcome-42")
    assert task.type == "email:welcome"
    assert task.payload == b'{"user_id":42}'
    assert task.headers["tenant"] == "acme"
    assert task.headers["content-type"] == "application/json"
    assert task.max_retry == 3
    assert task.next_process_at is not None
    assert task.next_process_at >= before + timedelta(minutes=10) - timedelta(seconds=1)


def test_enqueue_reads_the_payload_from_a_file_and_sends_raw_bytes_with_raw(
    leasq: Leasq, client: Client, tmp_path: Path
) -> None:
    path = tmp_path / "payload.bin"
    path.write_bytes(b"\x00\x01binary")
    leasq("task", "enqueue", "files", "blob", "--payload", f"@{path}", "--raw",
          "--task-id", "b1").ok()
    assert client.get_task("files", "b1").payload == b"\x00\x01binary"


def test_enqueue_refuses_a_payload_that_is_not_json_before_sending_it(
    leasq: Leasq, client: Client
) -> None:
    run = leasq("task", "enqueue", "email", "x", "--payload", "{oops")
    assert run.code == 2
    assert "--payload" in one_error_line(run)
    assert client.list_queues() == []


def test_ls_lists_the_tasks_of_a_state_with_their_payload_and_json_holds_them_all(
    leasq: Leasq, client: Client
) -> None:
    ids = [client.enqueue("email:welcome", {"user_id": n}, queue="email").id for n in range(3)]
    table = leasq("task", "ls", "email", "--state", "pending").ok().stdout
    for task_id in ids:
        assert task_id in table
    assert '{"user_id":1}' in table
    assert "3 shown of 3" in table
    listed = leasq("--json", "task", "ls", "email", "--state", "pending").json()
    assert [t["id"] for t in listed["tasks"]] == ids
    assert listed["tasks"][0]["payload_json"] == {"user_id": 0}
    assert listed["total_size"] == 3


def test_ls_limit_shows_only_the_oldest_tasks(leasq: Leasq, client: Client) -> None:
    ids = [client.enqueue("t", b"", queue="q").id for _ in range(5)]
    listed = leasq("task", "ls", "q", "--state", "pending", "--limit", "2", "--page-size",
                   "1", "--json").json()
    assert [t["id"] for t in listed["tasks"]] == ids[:2]


def test_get_pretty_prints_a_json_payload_and_shows_binary_as_hex(
    leasq: Leasq, client: Client
) -> None:
    client.enqueue("report", {"month": "2026-11", "pages": [1, 2]}, queue="r", task_id="j")
    client.enqueue("blob", b"\xff\xfe\x00", queue="r", task_id="b")
    text = leasq("task", "get", "r", "j").ok().stdout
    assert '"month": "2026-11"' in text  # indented JSON, not one compact line
    assert "state" in text and "pending" in text
    assert "hex: ff fe 00" in leasq("task", "get", "r", "b").ok().stdout
    data = leasq("task", "get", "r", "j", "--json").json()
    assert data["payload_json"] == {"month": "2026-11", "pages": [1, 2]}
    assert data["state"] == "pending"
    assert data["enqueued_at"].endswith("Z")
    datetime.fromisoformat(data["enqueued_at"])


def test_archive_run_and_delete_move_one_task(leasq: Leasq, client: Client) -> None:
    client.enqueue("t", b"", queue="q", task_id="a")
    assert "now archived" in leasq("task", "archive", "q", "a").ok().stdout
    assert client.get_task("q", "a").state is TaskState.ARCHIVED
    assert leasq("--json", "task", "run", "q", "a").json()["state"] == "pending"
    assert client.get_task("q", "a").state is TaskState.PENDING
    leasq("task", "delete", "q", "a").ok()
    assert client.list_tasks("q", "pending").total_size == 0


def test_an_unknown_task_is_one_error_line_and_exit_code_3(leasq: Leasq, client: Client) -> None:
    client.enqueue("t", b"", queue="q")
    run = leasq("task", "get", "q", "missing")
    assert run.code == 3
    assert "missing" in one_error_line(run)


def test_cancelling_a_task_that_is_not_active_is_refused_with_exit_code_4(
    leasq: Leasq, client: Client
) -> None:
    client.enqueue("t", b"", queue="q", task_id="p")
    run = leasq("task", "cancel", "q", "p")
    assert run.code == 4
    assert one_error_line(run).startswith("error: WRONG_STATE")


def test_search_finds_tasks_by_payload_text_and_type(leasq: Leasq, client: Client) -> None:
    client.enqueue("email:welcome", {"user": "ada"}, queue="q", task_id="ada")
    client.enqueue("email:welcome", {"user": "bob"}, queue="q", task_id="bob")
    client.enqueue("email:digest", {"user": "ada"}, queue="q", task_id="digest")
    found = leasq("--json", "task", "search", "q", "--state", "pending",
                  "--payload-contains", "ada").json()
    assert sorted(t["id"] for t in found["tasks"]) == ["ada", "digest"]
    found = leasq("--json", "task", "search", "q", "--state", "pending",
                  "--payload-contains", "ada", "--type", "email:welcome").json()
    assert [t["id"] for t in found["tasks"]] == ["ada"]
    assert "bob" in leasq("task", "search", "q", "--state", "pending", "--id-prefix",
                          "bo").ok().stdout
