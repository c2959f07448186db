"""The Redis screen shows what the broker's Redis says about itself."""

from __future__ import annotations

from typing import Any

import redis
from dashboard_testing import Served
from playwright.sync_api import expect


def test_the_redis_page_shows_the_aof_policy_memory_and_keyspace_of_the_brokers_redis(
    page: Any, dashboard: Served
) -> None:
    assert dashboard.broker.redis_url is not None
    client = redis.Redis.from_url(dashboard.broker.redis_url)
    try:
        policy = client.config_get("appendfsync")["appendfsync"]
        aof = bool(client.info("persistence")["aof_enabled"])
        version = client.info("server")["redis_version"]
        client.set("dashboard-test-key", "1")
    finally:
        client.close()
    page.goto(dashboard.at("redis"))
    expect(page.locator("h1")).to_have_text("Redis")
    expect(page.locator("#aof-policy")).to_have_text(policy)
    expect(page.locator("#aof-state")).to_have_text("on" if aof else "off")
    expect(page.locator("#nodes")).to_contain_text(version)
    expect(page.locator("#keyspace")).to_contain_text("db0")
    expect(page.get_by_role("link", name="Redis")).to_have_attribute("aria-current", "page")
