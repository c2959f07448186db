"""The schedules screen: every schedule with its spec, next fires and history; pause, resume and
trigger now from the page change the schedule as the ScheduleService sees it; readers and
unknown schedules are refused at the HTTP level."""

from __future__ import annotations

from datetime import UTC
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from dashboard_testing import ADMIN, READER, Served, ServedFactory, sign_in, tokens_file
from playwright.sync_api import expect

from leasq.v1 import inspect_service_pb2 as ipb
from leasq.v1 import schedule_service_pb2 as spb
from leasq.v1 import task_pb2

QUEUE = "reports"


def _upsert(served: Served, name: str, spec: str, task_type: str) -> None:
    template = spb.TaskTemplate(type=task_type, queue=QUEUE)
    schedule = spb.Schedule(name=name, spec=spec, template=template)
    served.schedules.UpsertSchedule(spb.UpsertScheduleRequest(schedule=schedule),
                                    metadata=served.metadata)


def _schedule(served: Served, name: str) -> spb.Schedule:
    request = spb.GetScheduleRequest(name=name)
    return served.schedules.GetSchedule(request, metadata=served.metadata).schedule


def _shown(schedule: spb.Schedule) -> str:
    """The next fire as the page writes it (UTC)."""
    return schedule.next_fire_at.ToDatetime(UTC).strftime("%Y-%m-%d %H:%M:%S")


def test_a_schedule_shows_with_its_next_fire_and_pause_resume_and_trigger_act_on_it(
    page: Any, dashboard: Served
) -> None:
    _upsert(dashboard, "nightly-report", "0 3 * * *", "report.build")
    _upsert(dashboard, "hourly-sync", "@every 1h", "sync.run")
    page.goto(dashboard.at("schedules"))
    row = page.locator("tr[data-schedule='nightly-report']")
    expect(row).to_contain_text("0 3 * * *")
    expect(row).to_contain_text("cron")
    expect(row).to_contain_text("report.build")
    expect(row).to_contain_text(QUEUE)
    expect(row.locator(".badge")).to_have_text("active")
    next_fire = _shown(_schedule(dashboard, "nightly-report"))
    expect(row.locator(".next-fire")).to_contain_text(next_fire)
    expect(page.locator("tr[data-schedule='hourly-sync']")).to_contain_text("interval")

    row.locator("button", has_text="Pause").click()
    expect(page.locator(".flash")).to_contain_text("nightly-report is paused")
    expect(row.locator(".badge")).to_have_text("paused")
    assert _schedule(dashboard, "nightly-report").paused
    row.locator("button", has_text="Resume").click()
    expect(page.locator(".flash")).to_contain_text("nightly-report is active again")
    resumed = _schedule(dashboard, "nightly-report")
    assert not resumed.paused

    row.locator("a", has_text="nightly-report").click()
    page.wait_for_url(dashboard.at("schedules/nightly-report"))
    upcoming = page.locator("#upcoming li")
    expect(upcoming).to_have_count(5)
    expect(upcoming.first).to_contain_text(_shown(resumed))
    expect(page.locator("#fires")).to_contain_text("Not fired yet")

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("button", has_text="Trigger now").click()
    expect(page.locator(".flash")).to_contain_text("nightly-report fired now: task")
    listed = dashboard.inspect.ListTasks(ipb.ListTasksRequest(
        queue=QUEUE, state=task_pb2.TASK_STATE_PENDING)).tasks
    assert [t.type for t in listed] == ["report.build"]
    task_id = listed[0].id
    expect(page.locator(".flash")).to_contain_text(task_id)
    fire = page.locator("#fires tbody tr").first
    expect(fire).to_contain_text("manual")
    link = fire.locator(f"a[href$='queues/{QUEUE}/tasks/{quote(task_id, safe='')}']")
    expect(link).to_have_text(task_id)
    expect(fire).to_contain_text("pending")
    assert _schedule(dashboard, "nightly-report").next_fire_at == resumed.next_fire_at


def test_a_reader_sees_schedules_without_buttons_and_cannot_change_them(
    dashboard_factory: ServedFactory, tmp_path: Path, page: Any
) -> None:
    served = dashboard_factory(auth_tokens_file=tokens_file(tmp_path), token=ADMIN)
    _upsert(served, "nightly-report", "0 3 * * *", "report.build")
    sign_in(page, served, READER)
    page.wait_for_url(served.url)
    for path in ("schedules", "schedules/nightly-report"):
        page.goto(served.at(path))
        expect(page.locator("main")).to_contain_text("nightly-report")
        assert page.locator("main form").count() == 0
    with httpx.Client(headers={"Authorization": f"Bearer {READER}"}) as client:
        client.get(served.at("schedules")).raise_for_status()
        csrf = client.cookies["leasq_csrf"]
        for action in ("pause", "resume", "trigger"):
            answer = client.post(served.at(f"schedules/nightly-report/{action}"),
                                 data={"csrf": csrf})
            assert answer.status_code == 403, answer.text
    assert not _schedule(served, "nightly-report").paused


def test_an_unknown_schedule_answers_404_with_its_name(
    dashboard_factory: ServedFactory, tmp_path: Path
) -> None:
    served = dashboard_factory(auth_tokens_file=tokens_file(tmp_path), token=ADMIN)
    with httpx.Client(headers={"Authorization": f"Bearer {ADMIN}"}) as client:
        page = client.get(served.at("schedules/ghost"))
        assert page.status_code == 404
        assert "no schedule named 'ghost'" in unescape(page.text)
        csrf = client.cookies["leasq_csrf"]
        for action in ("pause", "resume", "trigger"):
            answer = client.post(served.at(f"schedules/ghost/{action}"), data={"csrf": csrf})
            assert answer.status_code == 404, answer.text
            assert "no schedule named 'ghost'" in unescape(answer.text)
        bad = client.get(served.at("schedules/bad%20name"))
        assert bad.status_code == 400
        assert "name:" in unescape(bad.text)
