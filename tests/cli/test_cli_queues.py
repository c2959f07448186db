"""``leasq stats`` and ``leasq queue``, against a real broker."""

from __future__ import annotations

from datetime import UTC, datetime

from cli_testing import Leasq, one_error_line

from leasq_sdk import Client


def seed(client: Client) -> None:
    """email: 2 pending, 1 scheduled, 1 archived; sms: 1 pending."""
    client.enqueue("email:welcome", {"n": 1}, queue="email")
    client.enqueue("email:welcome", {"n": 2}, queue="email")
    client.enqueue("email:later", b"", queue="email", process_in=3600)
    client.enqueue("email:dead", b"", queue="email", task_id="dead")
    client.archive("email", "dead")
    client.enqueue("sms:send", b"", queue="sms")


def test_stats_shows_every_queue_with_its_sizes_and_the_server(
    leasq: Leasq, client: Client
) -> None:
    seed(client)
    lines = leasq("stats").ok().stdout.splitlines()
    email = next(line.split() for line in lines if line.startswith("email"))
    # queue, state, pending, scheduled, active, retry, archived, ...
    assert email[:7] == ["email", "running", "2", "1", "0", "0", "1"]
    assert any(line.split()[:3] == ["sms", "running", "1"] for line in lines)
    text = "\n".join(lines)
    assert "2 queues" in text
    assert "version" in text and "memory" in text


def test_stats_json_holds_the_queues_and_the_server_info(leasq: Leasq, client: Client) -> None:
    seed(client)
    client.pause("sms")
    data = leasq("stats", "--json").json()
    by_name = {q["queue"]: q for q in data["queues"]}
    assert set(by_name) == {"email", "sms"}
    assert (by_name["email"]["pending"], by_name["email"]["scheduled"],
            by_name["email"]["archived"]) == (2, 1, 1)
    assert by_name["sms"]["paused"] is True
    assert isinstance(by_name["email"]["latency"], float)
    assert data["server"]["version"]
    assert data["server"]["redis"]["used_memory_bytes"] > 0
    datetime.fromisoformat(data["server"]["started_at"])


def test_stats_without_queues_says_so(leasq: Leasq) -> None:
    assert "no queues yet" in leasq("stats").ok().stdout


def test_queue_ls_and_inspect_show_the_counts(leasq: Leasq, client: Client) -> None:
    seed(client)
    listed = leasq("--json", "queue", "ls").json()
    assert [q["queue"] for q in listed] == ["email", "sms"]
    text = leasq("queue", "inspect", "email").ok().stdout
    assert "pending      2" in text
    assert "archived     1" in text
    inspected = leasq("queue", "inspect", "email", "--json").json()
    assert inspected["queue"] == "email"
    assert inspected["memory_bytes"] > 0


def test_pause_and_resume_change_the_queue_and_say_so(leasq: Leasq, client: Client) -> None:
    seed(client)
    assert "paused queue email" in leasq("queue", "pause", "email").ok().stdout
    assert client.queue_stats("email").paused
    assert leasq("--json", "queue", "resume", "email").json() == {"queue": "email",
                                                                  "paused": False}
    assert not client.queue_stats("email").paused


def test_history_lists_one_row_per_day_today_first(leasq: Leasq, client: Client) -> None:
    seed(client)
    data = leasq("--json", "queue", "history", "email", "--days", "3").json()
    assert data["days"][0]["date"] == datetime.now(UTC).date().isoformat()
    assert len(data["days"]) == 3
    text = leasq("queue", "history", "email", "--days", "2").ok().stdout
    assert datetime.now(UTC).date().isoformat() in text
    assert "all time" in text


def test_deleting_a_queue_that_holds_tasks_is_refused_without_force(
    leasq: Leasq, client: Client
) -> None:
    seed(client)
    run = leasq("queue", "delete", "sms")
    assert run.code == 4
    assert "QUEUE_NOT_EMPTY" in one_error_line(run)
    assert client.queue_stats("sms").pending == 1


def test_force_delete_asks_first_and_deletes_the_tasks_with_yes(
    leasq: Leasq, client: Client
) -> None:
    seed(client)
    refused = leasq("queue", "delete", "sms", "--force", input="n\n")
    assert refused.code == 1
    assert "Delete queue sms and its 1 tasks?" in refused.stderr
    assert client.queue_stats("sms").pending == 1
    done = leasq("--json", "queue", "delete", "sms", "--force", "--yes").json()
    assert done == {"queue": "sms", "deleted_tasks": 1}
    assert [q.queue for q in client.list_queues()] == ["email"]


def test_an_unknown_queue_is_not_found(leasq: Leasq) -> None:
    run = leasq("queue", "delete", "nowhere")
    assert run.code == 3
    one_error_line(run)


def test_settings_are_shown_changed_and_reset(leasq: Leasq, client: Client) -> None:
    shown = leasq("--json", "queue", "settings", "digests").json()
    assert shown["groups"] == {"grace_period": 5.0, "max_delay": 60.0, "max_size": 100}
    changed = leasq("--json", "queue", "settings", "digests", "--group-grace", "2s",
                    "--group-max-size", "500").json()
    assert changed["groups"]["grace_period"] == 2.0
    assert changed["groups"]["max_size"] == 500
    assert client.queue_settings("digests").groups.max_size == 500
    text = leasq("queue", "settings", "digests", "--reset-group-max-size").ok().stdout
    assert "group max size   100" in text
    assert "group grace      2s" in text


def test_bad_settings_are_refused_as_usage_errors(leasq: Leasq) -> None:
    run = leasq("queue", "settings", "q", "--group-grace", "soon")
    assert run.code == 2
    assert "--group-grace" in one_error_line(run)
    run = leasq("queue", "settings", "q", "--group-grace", "25h")
    assert run.code == 2
    one_error_line(run)
