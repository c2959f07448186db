"""The queue screen in Chromium against a real broker with real tasks: tab counts, moving
selected tasks, acting on a whole state, search, pause/resume, settings, paging."""

from __future__ import annotations

from html import unescape
from pathlib import Path
from typing import Any

import pytest
from dashboard_tasks import (
    ADMIN,
    READER,
    enqueue,
    fail,
    guarded_broker,
    lease,
    session,
    state_of,
    stats,
)
from dashboard_testing import Served, ServedFactory
from google.protobuf.duration_pb2 import Duration
from playwright.sync_api import expect

from leasq.v1 import inspect_service_pb2 as inspect_pb

DASH = "\u2013"  # between the pager's first and last row numbers


def seed_every_state(served: Served, queue: str) -> dict[str, list[str]]:
    """1 active, 2 retry, 1 archived (leased and failed), 5 pending, 1 scheduled."""
    enqueue(served, queue, 4, task_type="report:build", task_id="old")
    leased = lease(served, queue, 4)
    fail(served, leased[:2], "smtp down", "SmtpError")
    fail(served, leased[2:3], "bad address", "InvalidAddress", archive=True)
    return {
        "active": [leased[3].id], "retry": [t.id for t in leased[:2]], "archived": [leased[2].id],
        "pending": enqueue(served, queue, 5, task_id="new"),
        "scheduled": enqueue(served, queue, 1, task_id="later", process_in=Duration(seconds=3600)),
    }


def tab_count(page: Any, state: str) -> Any:
    return page.locator(f".tabs a[data-state={state}] .tab-count")


def select_and(page: Any, ids: list[str], action: str) -> None:
    for task_id in ids:
        page.check(f"tr[data-task='{task_id}'] input[name=id]")
    page.click(f"form.selection button[data-action={action}]")


def test_the_tabs_count_each_state_and_selected_tasks_are_archived_run_and_deleted(
    page: Any, dashboard: Served
) -> None:
    ids = seed_every_state(dashboard, "mail")
    page.goto(dashboard.at("queues/mail"))
    for state, expected in (("pending", 5), ("active", 1), ("scheduled", 1), ("retry", 2),
                            ("archived", 1), ("completed", 0), ("aggregating", 0)):
        expect(tab_count(page, state)).to_have_text(str(expected))
    expect(page.locator("#tasks tbody tr[data-task]")).to_have_count(5)

    select_and(page, ids["pending"][:2], "archive")
    expect(page.locator(".flash[role=status]")).to_have_text("Archived 2 tasks.")
    expect(tab_count(page, "archived")).to_have_text("3")
    assert [state_of(dashboard, "mail", i) for i in ids["pending"][:2]] == ["archived"] * 2

    page.click(".tabs a[data-state=archived]")
    select_and(page, [ids["archived"][0]], "run")
    expect(page.locator(".flash[role=status]")).to_have_text("Ran 1 task.")
    assert state_of(dashboard, "mail", ids["archived"][0]) == "pending"

    page.click(".tabs a[data-state=retry]")
    page.check("#tasks input[data-select-all]")
    page.click("form.selection button[data-action=delete]")
    expect(page.locator(".flash[role=status]")).to_have_text("Deleted 2 tasks.")
    assert [state_of(dashboard, "mail", i) for i in ids["retry"]] == ["gone", "gone"]

    page.click(".tabs a[data-state=active]")
    expect(page.locator("form.selection button[data-action]")).to_have_text(["Cancel"])
    select_and(page, ids["active"], "cancel")
    expect(page.locator(".flash[role=status]")).to_have_text("Asked to cancel 1 task.")


def test_running_all_archived_tasks_asks_first_and_reports_the_count(
    page: Any, dashboard: Served
) -> None:
    enqueue(dashboard, "bulk", 3)
    fail(dashboard, lease(dashboard, "bulk", 3), "boom", "Boom", archive=True)
    page.goto(dashboard.at("queues/bulk?state=archived"))
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("button[data-bulk=run]")
    expect(tab_count(page, "archived")).to_have_text("3")
    assert stats(dashboard, "bulk").archived == 3

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button[data-bulk=run]")
    expect(page.locator(".flash[role=status]")).to_have_text("Ran all 3 archived tasks.")
    counts = stats(dashboard, "bulk")
    assert (counts.archived, counts.pending) == (0, 3)


def test_searching_finds_a_task_by_id_prefix_and_by_type(page: Any, dashboard: Served) -> None:
    enqueue(dashboard, "find", 30, task_id="hay")
    [needle] = enqueue(dashboard, "find", 1, task_type="report:build", task_id="needle")
    page.goto(dashboard.at("queues/find"))
    page.fill("input[name=prefix]", "needle")
    page.click("form.search button[type=submit]")
    expect(page.locator("#tasks tbody tr[data-task]")).to_have_count(1)
    expect(page.locator(f"tr[data-task='{needle}']")).to_be_visible()
    expect(page.locator("#search-note")).to_contain_text("Searched 31 of 31 pending tasks")

    page.fill("input[name=prefix]", "")
    page.fill("input[name=type]", "report:build")
    page.click("form.search button[type=submit]")
    expect(page.locator("#tasks tbody tr[data-task]")).to_have_count(1)
    page.click(f"tr[data-task='{needle}'] a")
    expect(page.locator("#task-id")).to_have_text(needle)


def test_a_paused_queue_shows_as_paused_and_resuming_it_from_the_page_resumes_it(
    page: Any, dashboard: Served
) -> None:
    enqueue(dashboard, "held", 2)
    dashboard.inspect.PauseQueue(inspect_pb.PauseQueueRequest(queue="held"))
    page.goto(dashboard.at("queues/held"))
    expect(page.locator("#queue-state")).to_have_text("paused")
    page.click("#pause-toggle")
    expect(page.locator("#queue-state")).to_have_text("active")
    expect(page.locator(".flash[role=status]")).to_have_text("Queue held resumed.")
    assert stats(dashboard, "held").paused is False


def test_editing_the_rate_limit_updates_the_queue_settings_and_bad_values_are_explained(
    page: Any, dashboard: Served
) -> None:
    enqueue(dashboard, "slow", 1)
    page.goto(dashboard.at("queues/slow"))
    page.fill("input[name=rate_per_second]", "2.5")
    page.fill("input[name=max_active]", "4")
    page.click("#settings button[type=submit]")
    expect(page.locator(".flash[role=status]")).to_have_text("Settings of queue slow saved.")
    settings = dashboard.inspect.GetQueueSettings(
        inspect_pb.GetQueueSettingsRequest(queue="slow")).settings
    assert (settings.rate_limit.per_second, settings.rate_limit.burst) == (2.5, 3)
    assert settings.max_active == 4
    expect(page.locator("input[name=rate_per_second]")).to_have_value("2.5")

    page.fill("input[name=rate_per_second]", "lots")
    page.click("#settings button[type=submit]")
    expect(page.locator("p.error[role=alert]")).to_contain_text("rate limit per second")
    page.fill("input[name=rate_per_second]", "0.0001")
    page.click("#settings button[type=submit]")
    expect(page.locator("p.error[role=alert]")).to_contain_text("must be between 0.001")
    assert dashboard.inspect.GetQueueSettings(inspect_pb.GetQueueSettingsRequest(
        queue="slow")).settings.rate_limit.per_second == 2.5


def test_the_task_table_pages_through_more_than_fifty_tasks(page: Any, dashboard: Served) -> None:
    ids = enqueue(dashboard, "many", 120, task_id="t")
    page.goto(dashboard.at("queues/many"))
    rows = page.locator("#tasks tbody tr[data-task]")
    expect(page.locator("#page-range")).to_have_text(f"1{DASH}50 of 120")
    expect(rows.first).to_have_attribute("data-task", ids[0])
    page.click("#page-next")
    expect(page.locator("#page-range")).to_have_text(f"51{DASH}100 of 120")
    expect(rows.first).to_have_attribute("data-task", ids[50])
    page.click("#page-next")
    expect(page.locator("#page-range")).to_have_text(f"101{DASH}120 of 120")
    expect(rows).to_have_count(20)
    expect(page.locator("#page-next")).to_have_count(0)
    page.click("#page-prev")
    expect(page.locator("#page-range")).to_have_text(f"51{DASH}100 of 120")


def test_the_aggregating_tab_lists_groups_that_can_be_flushed_and_deleted(
    page: Any, dashboard: Served
) -> None:
    hour = Duration(seconds=3600)
    dashboard.inspect.UpdateQueueSettings(inspect_pb.UpdateQueueSettingsRequest(
        queue="agg", settings=inspect_pb.QueueSettings(groups=inspect_pb.GroupSettings(
            grace_period=hour, max_delay=hour))))
    enqueue(dashboard, "agg", 3, task_type="digest", group="alice")
    enqueue(dashboard, "agg", 2, task_type="digest", group="bob")
    page.goto(dashboard.at("queues/agg?state=aggregating"))
    expect(tab_count(page, "aggregating")).to_have_text("5")
    expect(page.locator("#groups tr[data-group=alice] td.num")).to_have_text("3")
    expect(page.locator("input[name=group_grace_s]")).to_have_value("3600")

    page.click("#groups tr[data-group=alice] button:text('Flush')")
    expect(page.locator(".flash[role=status]")).to_contain_text("Flushed group alice: 3 tasks")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#groups tr[data-group=bob] button:text('Delete')")
    expect(page.locator(".flash[role=status]")).to_have_text("Deleted group bob and its 2 tasks.")
    counts = stats(dashboard, "agg")
    assert (counts.aggregating, counts.pending) == (0, 1)


def test_the_queue_page_refreshes_its_counts_live_and_keeps_what_is_being_typed(
    page: Any, dashboard: Served
) -> None:
    enqueue(dashboard, "live", 1)
    page.goto(dashboard.at("queues/live"))
    expect(tab_count(page, "pending")).to_have_text("1")
    page.fill("input[name=max_active]", "7")
    page.fill("input[name=type]", "report:build")
    page.click("#queue-name")  # the typed fields lose focus: the refresh goes on
    enqueue(dashboard, "live", 2)
    with page.expect_response(lambda answer: answer.request.headers.get("hx-request") == "true"):
        pass
    expect(tab_count(page, "pending")).to_have_text("3")
    expect(page.locator("input[name=max_active]")).to_have_value("7")
    expect(page.locator("input[name=type]")).to_have_value("report:build")


QUEUE_ACTIONS = ("pause", "resume", "selected/run", "selected/archive", "selected/delete",
                 "selected/cancel", "all/run", "all/archive", "all/delete", "settings",
                 "groups/flush", "groups/delete")  # fmt: skip


@pytest.fixture
def guarded(dashboard_factory: ServedFactory, tmp_path: Path) -> Served:
    return guarded_broker(dashboard_factory, tmp_path)


def test_a_reader_with_a_valid_csrf_value_is_refused_every_queue_action_and_nothing_changes(
    guarded: Served,
) -> None:
    [task_id] = enqueue(guarded, "mail", 1, task_id="keep")
    fail(guarded, lease(guarded, "mail", 1), "boom", "Boom", archive=True)
    with session(guarded, READER) as reader:
        csrf = reader.cookies["leasq_csrf"]
        for action in QUEUE_ACTIONS:
            answer = reader.post(guarded.at(f"queues/mail/{action}"), data={
                "csrf": csrf, "state": "archived", "id": task_id, "rate_per_second": "1",
                "type": "email:send", "group": "g"})
            assert answer.status_code == 403, (action, answer.text)
            assert "role" in answer.text
        shown = reader.get(guarded.at("queues/mail?state=archived")).text
    assert "read-only" in shown
    assert not any(form in shown for form in ("/selected/", "/all/", "pause-toggle",
                                               "Save settings"))
    assert state_of(guarded, "mail", task_id) == "archived"
    assert stats(guarded, "mail").paused is False
    settings = guarded.inspect.GetQueueSettings(inspect_pb.GetQueueSettingsRequest(
        queue="mail"), metadata=guarded.metadata).settings
    assert not settings.HasField("rate_limit")


def test_an_action_without_the_csrf_value_is_refused(guarded: Served) -> None:
    enqueue(guarded, "mail", 1)
    with session(guarded, ADMIN) as admin:
        answer = admin.post(guarded.at("queues/mail/pause"), data={"state": "pending"})
        wrong = admin.post(guarded.at("queues/mail/all/delete"),
                           data={"csrf": "forged", "state": "pending"})  # fmt: skip
    assert (answer.status_code, wrong.status_code) == (403, 403)
    assert "CSRF" in answer.text
    counts = stats(guarded, "mail")
    assert (counts.paused, counts.pending) == (False, 1)


def test_an_unknown_queue_a_bad_state_and_a_bad_page_token_answer_clear_errors(
    guarded: Served,
) -> None:
    enqueue(guarded, "mail", 1)
    with session(guarded, READER) as reader:
        missing = reader.get(guarded.at("queues/nosuch"))
        state = reader.get(guarded.at("queues/mail?state=sleeping"))
        token = reader.get(guarded.at("queues/mail?state=retry&page=garbage"))
        name = reader.get(guarded.at("queues/bad%20name"))
    assert missing.status_code == 404 and "no queue 'nosuch'" in unescape(missing.text)
    assert state.status_code == 400 and "unknown task state 'sleeping'" in unescape(state.text)
    assert token.status_code == 400 and "page_token" in token.text
    assert name.status_code == 400 and "invalid queue name" in name.text
