"""Who may open the dashboard and act in it: login, roles, CSRF, path prefix (HTTP level and in
the browser)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from dashboard_testing import ADMIN, PRODUCER, READER, Served, ServedFactory, sign_in, tokens_file

from leasq_broker.edge.tokens import hash_token


@pytest.fixture
def guarded(dashboard_factory: ServedFactory, tmp_path: Path) -> Served:
    return dashboard_factory(auth_tokens_file=tokens_file(tmp_path), token=ADMIN)


def test_the_dashboard_asks_for_a_token_before_showing_anything(page: Any, guarded: Served) -> None:
    page.goto(guarded.url)
    assert page.url == guarded.at("login")
    assert page.locator("input[name=token]").is_visible()


def test_a_wrong_token_is_refused_with_a_reason(page: Any, guarded: Served) -> None:
    sign_in(page, guarded, "not-a-token")
    assert "not valid" in page.locator("[role=alert]").inner_text()
    assert page.url == guarded.at("login")


def test_a_token_without_read_access_cannot_sign_in(page: Any, guarded: Served) -> None:
    sign_in(page, guarded, PRODUCER)
    assert "needs role reader" in page.locator("[role=alert]").inner_text()


def test_a_reader_signs_in_sees_the_queues_and_is_marked_read_only(
    page: Any, guarded: Served
) -> None:
    sign_in(page, guarded, READER)
    page.wait_for_url(guarded.url)
    assert page.locator("h1").inner_text() == "Queues"
    assert page.locator(".badge", has_text="read-only").is_visible()
    session = next(c for c in page.context.cookies() if c["name"] == "leasq_session")
    assert session["httpOnly"] and session["sameSite"] == "Strict"


def test_signing_out_forgets_the_token(page: Any, guarded: Served) -> None:
    sign_in(page, guarded, ADMIN)
    page.wait_for_url(guarded.url)
    page.click("text=Sign out")
    page.wait_for_url(guarded.at("login"))
    page.goto(guarded.url)
    assert page.url == guarded.at("login")


def test_a_post_without_the_csrf_value_is_refused(guarded: Served) -> None:
    answer = httpx.post(guarded.at("logout"), headers={"Authorization": f"Bearer {ADMIN}"})
    assert answer.status_code == 403
    assert "CSRF" in answer.text


def test_the_dashboard_is_served_under_a_path_prefix(dashboard_factory: ServedFactory) -> None:
    served = dashboard_factory(path="/ops/leasq")
    answer = httpx.get(served.url)
    assert answer.status_code == 200
    assert "/ops/leasq/static/app.css" in answer.text
    assert httpx.get(served.url + "static/app.js").status_code == 200
    bare = httpx.get(served.url.rstrip("/"))
    assert bare.status_code == 301 and bare.headers["Location"] == "/ops/leasq/"


def test_a_reader_limited_to_some_queues_opens_only_their_pages(
    dashboard_factory: ServedFactory, tmp_path: Path
) -> None:
    path = tokens_file(tmp_path)
    scoped = "billing-reader-token"
    path.write_text(path.read_text() + f'[[token]]\nname = "billing-reader"\nsha256 = '
                    f'"{hash_token(scoped)}"\nrole = "reader"\nqueues = ["billing*"]\n')
    served = dashboard_factory(auth_tokens_file=path, token=ADMIN)
    with httpx.Client(headers={"Authorization": f"Bearer {scoped}"}) as client:
        assert client.get(served.at("queues/billing-eu")).status_code == 404  # none yet
        refused = client.get(served.at("queues/payroll"))
        assert refused.status_code == 403
        assert "payroll" in refused.text
        assert client.get(served.at("queues/payroll/tasks/some-id")).status_code == 403
        assert client.get(served.url).status_code == 200
