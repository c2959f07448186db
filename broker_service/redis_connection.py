"""Turns ``--redis-url`` into a connected client: one Redis, a Sentinel-watched primary, a Redis
Cluster, or a private Redis started here. Apart from
:func:`~leasq_broker.cluster_slots.is_cluster` (a cluster cannot run a transaction over several
slots nor pub/sub through the cluster client), nothing else in the broker knows which kind it
got.

URL forms (docs/redis.md):

- ``redis://[user:password@]host[:port][/db]``, ``rediss://...`` (TLS), ``unix:///path.sock``:
  one Redis, read by redis-py's ``from_url`` (its query options apply).
- ``redis+sentinel://[user:password@]host[:port][,host[:port]...]/service[?options]`` (and
  ``rediss+sentinel://`` for TLS to the sentinels and the primary): the primary of ``service``
  as the sentinels name it, looked up again on every new connection, so that the broker
  follows a failover by itself. ``user:password`` authenticate to the primary; options are
  ``db``, ``sentinel_username``, ``sentinel_password`` (sentinels with their own ACL) and
  ``ssl_ca_certs``. Sentinel port defaults to 26379.
- ``redis+cluster://[user:password@]host[:port][,host[:port]...][?options]`` (and
  ``rediss+cluster://`` for TLS to every node): a Redis Cluster, reached through redis-py's
  ``RedisCluster`` with these startup nodes (any one that answers is enough: the client learns
  the others and the slot map from it, and follows MOVED/ASK redirections and failovers by
  itself). ``user:password`` authenticate to every node; the only option is ``ssl_ca_certs``.
  Port defaults to 6379; there is no path (a cluster has database 0 only).
- unset: a private redis-server under the data directory (:mod:`embedded_redis`).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from redis.asyncio import Redis, RedisCluster

from leasq_broker.cluster_connections import guard_writes
from leasq_broker.cluster_slots import is_cluster
from leasq_broker.embedded_redis import EmbeddedRedis
from leasq_broker.redis_packing import pack_with_hiredis

SENTINEL_SCHEMES = {"redis+sentinel": False, "rediss+sentinel": True}
PLAIN_SCHEMES = ("redis", "rediss", "unix")
CLUSTER_SCHEMES = {"redis+cluster": False, "rediss+cluster": True}
DEFAULT_SENTINEL_PORT = 26379
DEFAULT_CLUSTER_PORT = 6379
HEALTH_CHECK_INTERVAL_S = 30
# A sentinel or primary that does not answer a connect in this time is skipped (the next
# sentinel is asked; a failed primary connection is retried by the caller).
SENTINEL_CONNECT_TIMEOUT_S = 2.0
_SENTINEL_OPTIONS = ("db", "sentinel_username", "sentinel_password", "ssl_ca_certs")
_CLUSTER_OPTIONS = ("ssl_ca_certs",)
_CLUSTER_FORM = "redis+cluster://[user:password@]host:port[,host:port...][?ssl_ca_certs=...]"


class RedisUrlError(ValueError):
    """``--redis-url`` cannot be used; the message says what is wrong and the expected form."""


@dataclass(frozen=True, slots=True)
class SentinelTarget:
    """A parsed ``redis+sentinel://`` URL."""

    sentinels: list[tuple[str, int]]
    service: str
    tls: bool = False
    username: str | None = None
    password: str | None = None
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ClusterTarget:
    """A parsed ``redis+cluster://`` URL: the startup nodes and the nodes' credentials."""

    nodes: list[tuple[str, int]]
    tls: bool = False
    username: str | None = None
    password: str | None = None
    options: dict[str, str] = field(default_factory=dict)


def redact(url: str) -> str:
    """A Redis URL fit for a log line: passwords (userinfo and query) replaced."""
    scheme, sep, rest = url.partition("://")
    credentials, at, location = rest.rpartition("@")
    if at:
        rest = f"{credentials.partition(':')[0]}:***@{location}"
    rest = re.sub(r"((?:^|[?&])[a-z_]*password=)[^&]*", r"\1***", rest)
    return f"{scheme}{sep}{rest}"


def check_redis_url(url: str) -> str:
    """``url`` if the broker can use it, else :class:`RedisUrlError` (for the CLI)."""
    scheme = url.partition("://")[0].lower()
    if scheme in SENTINEL_SCHEMES:
        parse_sentinel_url(url)
    elif scheme in CLUSTER_SCHEMES:
        parse_cluster_url(url)
    elif scheme not in PLAIN_SCHEMES or "://" not in url:
        raise RedisUrlError(
            f"unsupported Redis URL {redact(url)!r}: expected redis://, rediss://, unix://, "
            "redis+sentinel://host:port[,host:port...]/service, rediss+sentinel://..., "
            "redis+cluster://host:port[,host:port...] or rediss+cluster://...")
    else:
        from redis.connection import parse_url

        try:
            parse_url(url)  # type: ignore[no-untyped-call]
        except ValueError as error:
            raise RedisUrlError(f"bad Redis URL {redact(url)!r}: {error}") from None
    return url


def parse_sentinel_url(url: str) -> SentinelTarget:
    """The sentinels, service and options of a ``redis+sentinel://`` URL."""
    parts = urlsplit(url)
    netloc = parts.netloc
    userinfo, at, hosts = netloc.rpartition("@")
    if not at:
        userinfo, hosts = "", netloc
    sentinels = [_host_port(item, url) for item in hosts.split(",")]
    service = unquote(parts.path.strip("/"))
    if not service or "/" in service:
        raise RedisUrlError(f"{redact(url)!r}: name the monitored service as the path, e.g. "
                            "redis+sentinel://s1:26379,s2:26379/mymaster")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - set(_SENTINEL_OPTIONS))
    if unknown:
        raise RedisUrlError(f"{redact(url)!r}: unknown option(s) {', '.join(unknown)}; known: "
                            f"{', '.join(_SENTINEL_OPTIONS)}")
    if "db" in options and not options["db"].isdigit():
        raise RedisUrlError(f"{redact(url)!r}: db must be a number, got {options['db']!r}")
    user, colon, password = userinfo.partition(":")
    return SentinelTarget(
        sentinels, service, tls=SENTINEL_SCHEMES[parts.scheme.lower()],
        username=unquote(user) or None, password=unquote(password) if colon else None,
        options=options,
    )


def parse_cluster_url(url: str) -> ClusterTarget:
    """The startup nodes, credentials and options of a ``redis+cluster://`` URL."""
    parts = urlsplit(url)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    if not at:
        userinfo, hosts = "", parts.netloc
    if not hosts.strip():
        raise RedisUrlError(
            f"{redact(url)!r}: name at least one cluster node, e.g. {_CLUSTER_FORM}")
    nodes = [_host_port(item, url, DEFAULT_CLUSTER_PORT, "cluster node", _CLUSTER_FORM)
             for item in hosts.split(",")]
    if parts.path.strip("/"):
        raise RedisUrlError(f"{redact(url)!r}: a Redis Cluster has no database to choose, so "
                            f"the URL has no path; expected {_CLUSTER_FORM}")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - set(_CLUSTER_OPTIONS))
    if unknown:
        raise RedisUrlError(f"{redact(url)!r}: unknown option(s) {', '.join(unknown)}; known: "
                            f"{', '.join(_CLUSTER_OPTIONS)}")
    user, colon, password = userinfo.partition(":")
    return ClusterTarget(
        nodes, tls=CLUSTER_SCHEMES[parts.scheme.lower()], username=unquote(user) or None,
        password=unquote(password) if colon else None, options=options)


def _host_port(item: str, url: str, default_port: int = DEFAULT_SENTINEL_PORT,
               what: str = "sentinel address",
               form: str = "host[:port] separated by commas") -> tuple[str, int]:
    """``host``, ``host:port`` or ``[v6]:port`` as a (host, port) pair."""
    item = item.strip()
    if item.startswith("["):
        host, _, rest = item[1:].partition("]")
        colon, port = rest[:1], rest[1:]
    else:
        host, colon, port = item.partition(":")
    if not colon:
        port = str(default_port)
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise RedisUrlError(f"{redact(url)!r}: bad {what} {item!r}; expected {form}")
    return host, int(port)


@dataclass(frozen=True, slots=True)
class RedisConnection:
    """The connected client, its URL (for logs: redact it), and the private server if any.
    ``is_cluster``: the client is a ``RedisCluster`` (typed as ``Redis``: it offers the same
    commands, minus transactions over several slots and pub/sub)."""

    client: Redis
    url: str
    embedded: EmbeddedRedis | None
    is_cluster: bool = False


def _client(url: str) -> tuple[Redis, Any]:
    """A client for ``url`` (not yet connected) and what else must be closed with it."""
    scheme = url.partition("://")[0].lower()
    if scheme in CLUSTER_SCHEMES:
        return _cluster_client(parse_cluster_url(url)), None
    if scheme not in SENTINEL_SCHEMES:
        return Redis.from_url(url, health_check_interval=HEALTH_CHECK_INTERVAL_S), None
    from redis.asyncio.sentinel import Sentinel

    target = parse_sentinel_url(url)
    tls: dict[str, Any] = {"ssl": True} if target.tls else {}
    if target.tls and "ssl_ca_certs" in target.options:
        tls["ssl_ca_certs"] = target.options["ssl_ca_certs"]
    sentinel_kwargs: dict[str, Any] = {
        "socket_connect_timeout": SENTINEL_CONNECT_TIMEOUT_S,
        "socket_timeout": SENTINEL_CONNECT_TIMEOUT_S,
        "username": target.options.get("sentinel_username"),
        "password": target.options.get("sentinel_password"), **tls,
    }
    sentinel = Sentinel(target.sentinels, sentinel_kwargs=sentinel_kwargs)  # type: ignore[no-untyped-call]
    client = sentinel.master_for(
        target.service, username=target.username, password=target.password,
        db=int(target.options.get("db", 0)), health_check_interval=HEALTH_CHECK_INTERVAL_S,
        socket_connect_timeout=SENTINEL_CONNECT_TIMEOUT_S, **tls,
    )
    return client, sentinel


def _cluster_client(target: ClusterTarget) -> Redis:
    """redis-py's cluster client on ``target``'s startup nodes (typed as the ``Redis`` it
    stands in for)."""
    from redis.asyncio.cluster import ClusterNode

    tls: dict[str, Any] = {"ssl": True} if target.tls else {}
    if target.tls and "ssl_ca_certs" in target.options:
        tls["ssl_ca_certs"] = target.options["ssl_ca_certs"]
    cluster = RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
        username=target.username, password=target.password,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
        socket_connect_timeout=SENTINEL_CONNECT_TIMEOUT_S, **tls,
    )
    guard_writes(cluster)
    return cluster  # type: ignore[return-value]


@contextlib.asynccontextmanager
async def connect(redis_url: str | None, data_dir: Path) -> AsyncIterator[RedisConnection]:
    """A connected client: to ``redis_url``, or to a private Redis started under ``data_dir``
    (stopped on exit, after the client is closed)."""
    embedded: EmbeddedRedis | None = None
    url = check_redis_url(redis_url) if redis_url is not None else None
    if url is None:
        embedded = EmbeddedRedis(data_dir)
        url = await embedded.start()
    try:
        client, sentinel = _client(url)
        pack_with_hiredis(client)
        try:
            await client.ping()
            yield RedisConnection(client, url, embedded, is_cluster=is_cluster(client))
        finally:
            await client.aclose()
            if sentinel is not None:
                await sentinel.aclose()
    finally:
        if embedded is not None:
            await embedded.stop()
