"""The task screen in Chromium against a real broker: fields, payload as pretty JSON or hex,
the last error, why it waits, and its actions."""

from __future__ import annotations

import json
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from dashboard_tasks import ADMIN, READER, enqueue, fail, guarded_broker, lease, session, state_of
from dashboard_testing import Served, ServedFactory
from playwright.sync_api import expect

from leasq.v1 import inspect_service_pb2 as inspect_pb


@pytest.fixture
def guarded(dashboard_factory: ServedFactory, tmp_path: Path) -> Served:
    return guarded_broker(dashboard_factory, tmp_path)


def test_the_task_page_shows_a_json_payload_pretty_and_highlighted_with_its_headers(
    page: Any, dashboard: Served
) -> None:
    payload = json.dumps({"user": 42, "name": "Ada", "tags": ["x"], "vip": True}).encode()
    [task_id] = enqueue(dashboard, "mail", 1, payload=payload, headers={"tenant": "acme"},
                        task_id="json")  # fmt: skip
    page.goto(dashboard.at(f"queues/mail/tasks/{task_id}"))
    shown = page.locator("pre#payload.json")
    expect(shown).to_contain_text('"user": 42')
    expect(shown.locator("span.k").first).to_have_text('"user"')
    expect(shown.locator("span.n")).to_have_text("42")
    expect(shown.locator("span.b")).to_have_text("true")
    expect(page.locator("#headers")).to_contain_text("acme")
    expect(page.locator("#task-state")).to_have_text("pending")
    expect(page.locator("#retried")).to_have_text("0 of 25")


def test_a_binary_payload_is_shown_as_hex_and_a_huge_one_is_cut_with_a_note(
    page: Any, dashboard: Served
) -> None:
    [small] = enqueue(dashboard, "bin", 1, payload=bytes([0, 1, 0xFF, 0x41]), task_id="small")
    [huge] = enqueue(dashboard, "bin", 1, payload=b"\xff" * 100_000, task_id="huge")
    page.goto(dashboard.at(f"queues/bin/tasks/{small}"))
    expect(page.locator("pre#payload.hex")).to_have_text(
        "00000000  00 01 ff 41" + " " * 38 + "...A")
    page.goto(dashboard.at(f"queues/bin/tasks/{huge}"))
    expect(page.locator("#payload-cut")).to_contain_text("of 97.7 KiB")
    expect(page.locator("pre#payload.hex")).to_contain_text("0000fff0  ff ff")


def test_a_failed_task_shows_its_last_error_with_its_type_and_its_retries(
    page: Any, dashboard: Served
) -> None:
    [task_id] = enqueue(dashboard, "mail", 1, task_id="flaky")
    fail(dashboard, lease(dashboard, "mail", 1), "smtp: connection refused", "SmtpError")
    page.goto(dashboard.at(f"queues/mail/tasks/{task_id}"))
    expect(page.locator("#task-state")).to_have_text("retry")
    expect(page.locator("#last-error")).to_have_text("smtp: connection refused")
    expect(page.locator("#last-error-type")).to_have_text("SmtpError")
    expect(page.locator("#retried")).to_have_text("1 of 25")
    expect(page.locator("#blocked")).to_contain_text("waiting for its next attempt")


def test_the_task_page_says_why_a_task_of_a_paused_queue_does_not_run_and_who_holds_an_active_one(
    page: Any, dashboard: Served
) -> None:
    [running] = enqueue(dashboard, "mail", 1, task_id="running")
    lease(dashboard, "mail", 1)
    [waiting] = enqueue(dashboard, "mail", 1, task_id="waiting")
    dashboard.inspect.PauseQueue(inspect_pb.PauseQueueRequest(queue="mail"))
    page.goto(dashboard.at(f"queues/mail/tasks/{waiting}"))
    expect(page.locator("#blocked")).to_contain_text("queue 'mail' is paused")
    page.goto(dashboard.at(f"queues/mail/tasks/{running}"))
    expect(page.locator("#lease-holder")).to_have_text("dash-worker")
    page.click("button[data-action=cancel]")
    expect(page.locator(".flash[role=status]")).to_have_text(f"Asked to cancel task {running}.")
    assert dashboard.inspect.GetTask(inspect_pb.GetTaskRequest(
        queue="mail", task_id=running)).task.cancel_requested


def test_archiving_running_and_deleting_from_the_task_page_change_its_state(
    page: Any, dashboard: Served
) -> None:
    [task_id] = enqueue(dashboard, "mail", 1, task_id="moved")
    page.goto(dashboard.at(f"queues/mail/tasks/{task_id}"))
    expect(page.locator("button[data-action]")).to_have_text(["Archive", "Delete"])
    page.click("button[data-action=archive]")
    expect(page.locator("#task-state")).to_have_text("archived")
    assert state_of(dashboard, "mail", task_id) == "archived"
    page.click("button[data-action=run]")
    expect(page.locator("#task-state")).to_have_text("pending")
    assert state_of(dashboard, "mail", task_id) == "pending"
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button[data-action=delete]")
    expect(page.locator(".flash[role=status]")).to_have_text(f"Deleted task {task_id}.")
    assert page.url.startswith(dashboard.at("queues/mail"))
    assert state_of(dashboard, "mail", task_id) == "gone"


def test_a_reader_with_a_valid_csrf_value_is_refused_every_task_action_and_nothing_changes(
    guarded: Served,
) -> None:
    [archived] = enqueue(guarded, "mail", 1, task_id="dead")
    fail(guarded, lease(guarded, "mail", 1), "boom", "Boom", archive=True)
    [active] = enqueue(guarded, "mail", 1, task_id="busy")
    lease(guarded, "mail", 1)
    with session(guarded, READER) as reader:
        for task_id in (archived, active):
            for action in ("run", "archive", "delete", "cancel"):
                answer = reader.post(guarded.at(f"queues/mail/tasks/{task_id}/{action}"),
                                     data={"csrf": reader.cookies["leasq_csrf"]})  # fmt: skip
                assert answer.status_code == 403, (task_id, action, answer.text)
        page = reader.get(guarded.at(f"queues/mail/tasks/{archived}"))
    assert "data-action" not in page.text
    assert (state_of(guarded, "mail", archived), state_of(guarded, "mail", active)) == (
        "archived", "active")
    assert not guarded.inspect.GetTask(inspect_pb.GetTaskRequest(queue="mail", task_id=active),
                                       metadata=guarded.metadata).task.cancel_requested


def test_an_unknown_task_answers_404_and_a_refused_move_a_message_on_the_page(
    guarded: Served,
) -> None:
    [task_id] = enqueue(guarded, "mail", 1, task_id="fresh")
    with session(guarded, ADMIN) as admin:
        missing = admin.get(guarded.at("queues/mail/tasks/nosuch"))
        other = admin.get(guarded.at(f"queues/elsewhere/tasks/{task_id}"))
        bad = admin.get(guarded.at("queues/mail/tasks/bad%20id"))
        run = admin.post(guarded.at(f"queues/mail/tasks/{task_id}/run"),
                         data={"csrf": admin.cookies["leasq_csrf"]})  # fmt: skip
    assert missing.status_code == 404 and "no task 'nosuch'" in unescape(missing.text)
    assert other.status_code == 404
    assert bad.status_code == 400 and "task_id" in bad.text
    assert run.status_code == 200
    assert f"cannot run task '{task_id}': it is pending" in unescape(run.text)
    assert state_of(guarded, "mail", task_id) == "pending"
