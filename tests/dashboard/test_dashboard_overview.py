"""The overview in Chromium: each queue's counts per state, paused queues, live refresh and its
pause, the history chart's length; at the HTTP level, bad input and read-only viewers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from dashboard_testing import Served, ServedFactory
from google.protobuf.duration_pb2 import Duration
from playwright.sync_api import expect

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import inspect_service_pb2 as ipb
from leasq.v1 import task_pb2
from leasq_broker.edge.tokens import hash_token

ADMIN, READER = "admin-secret-token", "reader-secret-token"
HOUR = Duration(seconds=3600)
# The live part polls every 3 s; a fast-forward of this much fires at least one poll.
POLL_SPAN_MS = 3_500


def enqueue(served: Served, queue: str, n: int = 1, **spec: Any) -> None:
    for _ in range(n):
        served.stub.Enqueue(pb.EnqueueRequest(task=task_pb2.TaskSpec(
            type="mail.send", payload=b'{"to": "a@example.com"}', queue=queue, **spec)),
            metadata=served.metadata)  # fmt: skip


def seed_every_state(served: Served, queue: str) -> None:
    """In ``queue``: 3 pending, 2 scheduled, 1 active, 1 retry, 1 archived, 1 completed;
    3 attempts processed today, 2 of them failed."""
    enqueue(served, queue, 4, retention=HOUR)
    leased = served.stub.Lease(pb.LeaseRequest(
        worker_id="w1", queues=[pb.QueueWeight(queue=queue, weight=1)], max_tasks=4,
        lease_duration=HOUR), metadata=served.metadata).tasks  # fmt: skip
    assert len(leased) == 4
    ref = [pb.LeaseRef(queue=queue, task_id=t.id, lease_token=t.lease_token) for t in leased]
    served.stub.Ack(pb.AckRequest(worker_id="w1", items=[pb.AckItem(lease=ref[0])]),
                    metadata=served.metadata)  # fmt: skip
    served.stub.Nack(pb.NackRequest(worker_id="w1", items=[
        pb.NackItem(lease=ref[1], action=pb.NACK_ACTION_RETRY, error="smtp timeout",
                    error_type="TimeoutError", retry_after=HOUR),
        pb.NackItem(lease=ref[2], action=pb.NACK_ACTION_ARCHIVE, error="bad address",
                    error_type="ValueError"),
    ]), metadata=served.metadata)  # fmt: skip
    enqueue(served, queue, 3)
    enqueue(served, queue, 2, process_in=HOUR)


def row(page: Any, queue: str) -> Any:
    return page.locator(f"#queues tr[data-queue='{queue}']")


def test_the_overview_shows_each_queues_counts_per_state_and_marks_a_paused_queue(
    page: Any, dashboard: Served
) -> None:
    seed_every_state(dashboard, "mail")
    enqueue(dashboard, "reports", 2)
    dashboard.inspect.PauseQueue(ipb.PauseQueueRequest(queue="reports"),
                                 metadata=dashboard.metadata)  # fmt: skip
    page.goto(dashboard.url)
    mail = row(page, "mail")
    expected = {"pending": "3", "active": "1", "scheduled": "2", "retry": "1",
                "archived": "1", "completed": "1", "aggregating": "0",
                "processed": "3", "failed": "2"}  # fmt: skip
    for state, number in expected.items():
        expect(mail.locator(f"td[data-state={state}]")).to_have_text(number)
    expect(mail.locator(".badge")).to_have_text("active")
    expect(row(page, "reports").locator(".badge")).to_have_text("paused")
    expect(row(page, "reports").locator("td[data-state=pending]")).to_have_text("2")
    expect(page.locator("[data-total=pending] .value")).to_have_text("5")
    expect(page.locator("#totals")).to_contain_text("1 paused")
    expect(mail.locator("a")).to_have_attribute("href", "/queues/mail")


def test_the_live_refresh_shows_a_new_task_and_pausing_it_stops_the_requests(
    page: Any, dashboard: Served
) -> None:
    enqueue(dashboard, "live")
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if r.headers.get("hx-request") else None)
    page.clock.install()
    page.goto(dashboard.url)
    pending = row(page, "live").locator("td[data-state=pending]")
    expect(pending).to_have_text("1")
    enqueue(dashboard, "live")
    page.clock.fast_forward(POLL_SPAN_MS)
    expect(pending).to_have_text("2")

    page.click("#live-toggle")
    expect(page.locator("#live-toggle")).to_have_text("Paused")
    enqueue(dashboard, "live")
    before = len(polls)
    for _ in range(3):
        page.clock.fast_forward(POLL_SPAN_MS)
    paused_polls = len(polls) - before
    # Resuming makes the next interval poll again: what would have come while paused has come
    # before this request's event.
    page.click("#live-toggle")
    with page.expect_request(lambda r: bool(r.headers.get("hx-request"))):
        page.clock.fast_forward(POLL_SPAN_MS)
    assert paused_polls == 0
    expect(pending).to_have_text("3")


def history_labels(page: Any) -> list[str]:
    return list(page.evaluate("Chart.getChart('history-chart').data.labels"))


def test_the_history_chart_switches_between_7_30_and_90_days(
    page: Any, dashboard: Served
) -> None:
    seed_every_state(dashboard, "mail")
    page.goto(dashboard.url)
    page.wait_for_function("window.Chart && Chart.getChart('history-chart')")
    assert len(history_labels(page)) == 7
    today_processed = page.evaluate("Chart.getChart('history-chart').data.datasets[0].data")
    assert today_processed[-1] == 3
    for days in (30, 90):
        page.click(f".segmented a:has-text('{days} days')")
        page.wait_for_url(f"**/?days={days}")
        # A new page: its chart exists once the history JSON arrived.
        page.wait_for_function("window.Chart && Chart.getChart('history-chart') && "
                               f"Chart.getChart('history-chart').data.labels.length == {days}")
        expect(page.locator(".segmented a[aria-current]")).to_have_text(f"{days} days")
    sizes = page.evaluate("Chart.getChart('sizes-chart').data.labels")
    assert sizes == ["mail"]


def test_the_queue_table_filters_by_name_and_sorts_by_size(page: Any, dashboard: Served) -> None:
    enqueue(dashboard, "billing", 1)
    enqueue(dashboard, "emails", 3)
    enqueue(dashboard, "email-digest", 2)
    page.goto(dashboard.url)
    page.fill("form.filter input[name=q]", "EMAIL")
    page.select_option("form.filter select[name=sort]", "size")
    page.click("form.filter button[type=submit]")
    page.wait_for_url(re.compile(r"q=EMAIL"))
    expect(page.locator("#queues tbody tr")).to_have_count(2)
    names = page.locator("#queues tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.queue)")
    assert names == ["emails", "email-digest"]


def test_an_unknown_page_answers_404(dashboard: Served) -> None:
    assert httpx.get(dashboard.at("no-such-screen")).status_code == 404


@pytest.mark.parametrize("query", ["days=14", "days=seven", "page=0", "sort=colour"])
def test_bad_overview_parameters_answer_400_with_what_is_allowed(
    dashboard: Served, query: str
) -> None:
    answer = httpx.get(dashboard.url + "?" + query)
    assert answer.status_code == 400
    assert "must be" in answer.text


def test_a_page_beyond_the_last_shows_the_last_page(dashboard: Served) -> None:
    enqueue(dashboard, "only")
    answer = httpx.get(dashboard.url + "?page=9")
    assert answer.status_code == 200
    assert 'data-queue="only"' in answer.text


def post_forms(html: str) -> list[str]:
    """The action of every POST form of a page."""
    return re.findall(r'<form[^>]*method="post"[^>]*action="([^"]*)"', html)


def test_a_reader_sees_no_action_forms_on_the_overview_or_the_redis_page(
    dashboard_factory: ServedFactory, tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens.toml"
    tokens.write_text("".join(
        f'[[token]]\nname = "{role}"\nsha256 = "{hash_token(secret)}"\nrole = "{role}"\n\n'
        for role, secret in (("admin", ADMIN), ("reader", READER))))  # fmt: skip
    served = dashboard_factory(auth_tokens_file=tokens, token=ADMIN)
    enqueue(served, "mail", 2)
    for path in ("", "redis"):
        answer = httpx.get(served.at(path), headers={"Authorization": f"Bearer {READER}"})
        assert answer.status_code == 200
        assert "read-only" in answer.text
        assert post_forms(answer.text) == ["/logout"]
    unsigned = httpx.get(served.url, follow_redirects=False)
    assert unsigned.status_code == 303
    assert unsigned.headers["Location"] == "/login"
