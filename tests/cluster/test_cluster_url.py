"""``redis+cluster://`` URLs: the forms the broker reads, and what it refuses saying why."""

from __future__ import annotations

import pytest

from leasq_broker.redis_connection import (
    ClusterTarget,
    RedisUrlError,
    check_redis_url,
    parse_cluster_url,
    redact,
)


def test_a_cluster_url_names_every_startup_node_and_the_nodes_credentials() -> None:
    target = parse_cluster_url("redis+cluster://app:p%40ss@n1:7000,n2,[::1]:7002")
    assert target == ClusterTarget(nodes=[("n1", 7000), ("n2", 6379), ("::1", 7002)],
                                   tls=False, username="app", password="p@ss")  # fmt: skip
    assert parse_cluster_url("redis+cluster://n1:7000/").nodes == [("n1", 7000)]
    assert parse_cluster_url("redis+cluster://:secret@n1:7000").password == "secret"


def test_rediss_cluster_is_tls_and_takes_the_ca_file_option() -> None:
    target = parse_cluster_url("rediss+cluster://n1:7000,n2:7001?ssl_ca_certs=/etc/ca.pem")
    assert target.tls and target.options == {"ssl_ca_certs": "/etc/ca.pem"}
    assert check_redis_url("REDIS+CLUSTER://n1:7000") == "REDIS+CLUSTER://n1:7000"


@pytest.mark.parametrize(("url", "says"), [
    ("redis+cluster://", "name at least one cluster node"),
    ("redis+cluster://n1:port", "bad cluster node 'n1:port'"),
    ("redis+cluster://n1:7000,:7001", "bad cluster node ':7001'"),
    ("redis+cluster://n1:99999", "bad cluster node"),
    ("redis+cluster://n1:7000/2", "has no database to choose"),
    ("redis+cluster://n1:7000?db=1", "unknown option(s) db"),
    ("redis+clusters://n1:7000", "unsupported Redis URL"),
])
def test_an_unusable_cluster_url_is_refused_with_the_expected_form(url: str, says: str) -> None:
    with pytest.raises(RedisUrlError) as refused:
        check_redis_url(url)
    assert says in str(refused.value)
    assert "redis+cluster://" in str(refused.value)


def test_the_cluster_password_is_redacted() -> None:
    assert redact("redis+cluster://app:secret@n1:7000,n2:7001") == (
        "redis+cluster://app:***@n1:7000,n2:7001")
