"""Fixtures of the dashboard tests: a real broker serving the dashboard, gRPC stubs to seed and
check it, and headless Debian Chromium driven by Playwright.

- ``dashboard_factory(**overrides) -> Served``: a broker with ``--dashboard`` on a free HTTP
  port (``overrides`` are more broker flags, e.g. ``auth_tokens_file=...``).
- ``dashboard``: ``dashboard_factory()``.
- ``browser`` (module): one Chromium per test module; ``page``: a fresh context and page per
  test (own cookies), failing the test on any JavaScript error of the page.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from broker_process import BrokerFactory, stable_port
from dashboard_testing import Served, ServedFactory

from leasq.v1 import broker_service_pb2_grpc, inspect_service_pb2_grpc, schedule_service_pb2_grpc

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]  # fmt: skip


@pytest.fixture
def dashboard_factory(broker_factory: BrokerFactory) -> Iterator[ServedFactory]:
    channels: list[grpc.Channel] = []

    def start(*, token: str | None = None, path: str = "/", **overrides: Any) -> Served:
        port = stable_port()
        broker = broker_factory(http_listen=f"127.0.0.1:{port}", dashboard="on",
                                dashboard_path=path, **overrides)  # fmt: skip
        channel = grpc.insecure_channel(broker.address)
        channels.append(channel)
        metadata = (("authorization", f"Bearer {token}"),) if token else ()
        prefix = "/" + path.strip("/") + "/" if path.strip("/") else "/"
        return Served(broker, f"http://127.0.0.1:{port}{prefix}",
                      broker_service_pb2_grpc.BrokerServiceStub(channel),
                      inspect_service_pb2_grpc.InspectServiceStub(channel),
                      schedule_service_pb2_grpc.ScheduleServiceStub(channel), metadata)

    yield start
    for channel in channels:
        channel.close()


@pytest.fixture
def dashboard(dashboard_factory: ServedFactory) -> Served:
    return dashboard_factory()


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("Chromium is not installed: `make test` installs Debian's chromium "
                    "(apt-get install -y chromium)")  # fmt: skip
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                              args=CHROMIUM_ARGS)  # fmt: skip
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
