"""``leasq schedule`` and ``leasq group``, against a real broker."""

from __future__ import annotations

from cli_testing import Leasq, one_error_line

from leasq_sdk import Client, Schedule, TaskState

NIGHTLY = Schedule("nightly", "0 3 * * *", "report:nightly", {"kind": "full"}, queue="reports")


def test_schedule_ls_and_get_show_the_definition_and_next_fire(
    leasq: Leasq, client: Client
) -> None:
    client.upsert_schedule(NIGHTLY)
    row = next(line.split() for line in leasq("schedule", "ls").ok().stdout.splitlines()
               if line.startswith("nightly"))
    assert row[:8] == ["nightly", "0", "3", "*", "*", "*", "UTC", "report:nightly"]
    listed = leasq("--json", "schedule", "ls").json()
    assert listed[0]["schedule"]["spec"] == "0 3 * * *"
    assert listed[0]["next_fire_at"].endswith("03:00:00Z")
    detail = leasq("schedule", "get", "nightly").ok().stdout
    assert "report:nightly on queue reports" in detail
    assert '"kind": "full"' in detail


def test_pause_resume_trigger_fires_and_delete(leasq: Leasq, client: Client) -> None:
    client.upsert_schedule(NIGHTLY)
    assert leasq("--json", "schedule", "pause", "nightly").json()["schedule"]["paused"] is True
    assert client.get_schedule("nightly").schedule.paused
    assert "resumed schedule nightly" in leasq("schedule", "resume", "nightly").ok().stdout
    assert not client.get_schedule("nightly").schedule.paused
    fired = leasq("--json", "schedule", "trigger", "nightly").json()
    assert client.get_task("reports", fired["id"]).type == "report:nightly"
    fires = leasq("--json", "schedule", "fires", "nightly").json()
    assert [f["status"] for f in fires] == ["manual"]
    assert fires[0]["task_id"] == fired["id"]
    assert "manual" in leasq("schedule", "fires", "nightly").ok().stdout
    assert leasq("schedule", "delete", "nightly", input="n\n").code == 1
    assert client.list_schedules()
    leasq("schedule", "delete", "nightly", "--yes").ok()
    assert client.list_schedules() == []


def test_an_unknown_schedule_is_not_found(leasq: Leasq) -> None:
    run = leasq("schedule", "get", "nope")
    assert run.code == 3
    assert "SCHEDULE_NOT_FOUND" in one_error_line(run)


def join(client: Client, key: str, count: int) -> list[str]:
    return [client.enqueue("email:digest", {"n": n}, queue="digests", group=key).id
            for n in range(count)]


def test_group_ls_and_members_show_the_waiting_tasks(leasq: Leasq, client: Client) -> None:
    client.update_queue_settings("digests", group_grace=3600, group_max_delay=7200)
    members = join(client, "user:1", 3)
    join(client, "user:2", 1)
    text = leasq("group", "ls", "digests").ok().stdout
    rows = [line.split() for line in text.splitlines() if line.startswith("email:digest")]
    assert [r[:3] for r in rows] == [["email:digest", "user:1", "3"],
                                     ["email:digest", "user:2", "1"]]
    listed = leasq("--json", "group", "members", "digests", "email:digest", "user:1").json()
    assert [t["id"] for t in listed["tasks"]] == members
    assert listed["tasks"][0]["state"] == "aggregating"


def test_group_flush_makes_one_task_and_delete_removes_the_members(
    leasq: Leasq, client: Client
) -> None:
    client.update_queue_settings("digests", group_grace=3600, group_max_delay=7200)
    join(client, "user:1", 2)
    join(client, "user:2", 2)
    flushed = leasq("--json", "group", "flush", "digests", "email:digest", "user:1").json()
    assert flushed["members"] == 2
    task = client.get_task("digests", flushed["task"]["id"])
    assert (task.state, len(task.members)) == (TaskState.PENDING, 2)
    run = leasq("group", "delete", "digests", "email:digest", "user:2", "--yes").ok()
    assert "deleted group user:2 (2 members)" in run.stdout
    assert client.queue_stats("digests").aggregating == 0
    gone = leasq("group", "flush", "digests", "email:digest", "user:2")
    assert gone.code == 3
    one_error_line(gone)
