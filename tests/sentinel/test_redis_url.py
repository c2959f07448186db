"""``--redis-url`` forms: Sentinel URLs are read as documented, unusable URLs are refused at start
with the expected forms, and passwords never reach a log line."""

from __future__ import annotations

import subprocess
import sys

import pytest
from broker_process import broker_environment

from leasq_broker.redis_connection import (
    RedisUrlError,
    SentinelTarget,
    check_redis_url,
    parse_sentinel_url,
    redact,
)


def test_a_sentinel_url_names_every_sentinel_the_service_and_the_primary_credentials() -> None:
    target = parse_sentinel_url(
        "redis+sentinel://app:p%40ss@s1:26380,s2,[::1]:26381/cache?db=3&sentinel_password=sp")
    assert target == SentinelTarget(
        sentinels=[("s1", 26380), ("s2", 26379), ("::1", 26381)], service="cache", tls=False,
        username="app", password="p@ss", options={"db": "3", "sentinel_password": "sp"})
    assert parse_sentinel_url("rediss+sentinel://s1/cache").tls


@pytest.mark.parametrize(("url", "says"), [
    ("redis+sentinel://s1:26379", "name the monitored service"),
    ("redis+sentinel://s1:port/cache", "bad sentinel address"),
    ("redis+sentinel://s1/cache?dbx=1", "unknown option(s) dbx"),
    ("redis+sentinel://s1/cache?db=one", "db must be a number"),
    ("redis+clusters://n1:7000/", "unsupported Redis URL"),
    ("localhost:6379", "unsupported Redis URL"),
    ("redis://:secret@localhost:63790000/0", "Port out of range"),
])
def test_an_unusable_redis_url_is_refused_saying_what_is_wrong(url: str, says: str) -> None:
    with pytest.raises(RedisUrlError) as refused:
        check_redis_url(url)
    assert says in str(refused.value)


def test_passwords_in_the_userinfo_and_the_options_are_redacted() -> None:
    shown = redact("redis+sentinel://app:secret@s1,s2/cache?sentinel_password=other&db=1")
    assert "secret" not in shown and "other" not in shown
    assert shown == "redis+sentinel://app:***@s1,s2/cache?sentinel_password=***&db=1"


def test_the_broker_refuses_to_start_on_an_unusable_url_without_echoing_its_password() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "leasq_broker", "serve", "--redis-url",
         "redis+sentinel://app:secret@s1/cache?bogus=1"],
        capture_output=True, text=True, env=broker_environment(), timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "unknown option(s) bogus" in done.stderr
    assert "secret" not in done.stderr
