"""The broker process: Redis connection, gRPC server, health and reflection, graceful shutdown.

Shutdown order on SIGTERM/SIGINT: waiting long-poll Leases answer at once (empty) and calls
that still arrive are answered UNAVAILABLE, health goes NOT_SERVING (load balancers and probes
stop sending work), the server stops taking calls and gives in-flight ones the grace period
(those still running then are answered UNAVAILABLE, which clients retry, never CANCELLED), then
the app stops its loops, Redis is closed and a private Redis is stopped last, so that nothing
writes to a store that is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from importlib import metadata
from typing import TYPE_CHECKING

import grpc
import grpc.aio
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection
from prometheus_client import disable_created_metrics
from redis.asyncio import Redis

from leasq.v1 import broker_service_pb2, inspect_service_pb2, schedule_service_pb2
from leasq_broker.app import BrokerApp
from leasq_broker.config import BrokerConfig
from leasq_broker.edge import decoding
from leasq_broker.edge.hangup import Hangup
from leasq_broker.edge.interceptors import build_interceptors
from leasq_broker.edge.roles import Authorizer
from leasq_broker.edge.shutdown import ShutdownGate
from leasq_broker.edge.tls import add_port, certificate_files, transport_name
from leasq_broker.embedded_redis import EmbeddedRedisError
from leasq_broker.observability import registry
from leasq_broker.observability.queue_stats import QueueStats
from leasq_broker.reader import TaskReader
from leasq_broker.redis_connection import RedisConnection, connect, redact

if TYPE_CHECKING:
    from leasq_broker.observability.http import HttpServer

log = structlog.get_logger(__name__)

BROKER_SERVICE = broker_service_pb2.DESCRIPTOR.services_by_name["BrokerService"].full_name
INSPECT_SERVICE = inspect_service_pb2.DESCRIPTOR.services_by_name["InspectService"].full_name
SCHEDULE_SERVICE = schedule_service_pb2.DESCRIPTOR.services_by_name["ScheduleService"].full_name
HEALTH_SERVICES = ("", BROKER_SERVICE, INSPECT_SERVICE, SCHEDULE_SERVICE)
# After the grace period, calls still running get this long to send their UNAVAILABLE answer.
EXPIRY_ANSWER_S = 1.0

# Long polls hold a call open for up to 60 s with no bytes moving: keep the connection alive
# with server pings, and accept client keepalive pings down to every 10 s (the SDK and
# other-language workers may enable keepalive). A client that pings more often gets a strike per
# early ping and, past two in a row, GOAWAY "too_many_pings": its connection closes.
# Limits per connection (docs/security.md): concurrent calls, idle time, and an age after which
# the client is told to reconnect (spreading load over replicas and picking up rotated
# certificates) with a grace longer than the longest long poll.
SERVER_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_ping_strikes", 2),
    ("grpc.max_concurrent_streams", 1_000),
    ("grpc.max_connection_idle_ms", 30 * 60_000),
    ("grpc.max_connection_age_ms", 60 * 60_000),
    ("grpc.max_connection_age_grace_ms", 90_000),
)


def server_options(config: BrokerConfig) -> tuple[tuple[str, int], ...]:
    """:data:`SERVER_OPTIONS` with the message size limit of ``config``. A broker on a taken
    port must fail instead of silently sharing it, except the processes of one ``--processes
    N`` broker, which share their port on purpose (SO_REUSEPORT)."""
    return (
        ("grpc.max_receive_message_length", config.max_message_bytes),
        ("grpc.max_send_message_length", config.max_message_bytes),
        *SERVER_OPTIONS,
        ("grpc.so_reuseport", int(config.process_index is not None)),
    )


def leasq_version() -> str:
    try:
        return metadata.version("leasq")
    except metadata.PackageNotFoundError:
        return "unknown"


def bound_address(listen: str, port: int) -> str:
    """``listen`` with the real port: ``127.0.0.1:0`` becomes ``127.0.0.1:43127``."""
    host, _, _ = listen.rpartition(":")
    return f"{host}:{port}"


class _StopSignals:
    """SIGTERM/SIGINT handling for the whole life of the server.

    The first signal (or ``stop`` being set) starts a graceful shutdown; a second one cuts the
    grace period short, as an impatient operator pressing Ctrl-C twice expects.
    """

    def __init__(self, stop: asyncio.Event | None) -> None:
        self.requested = stop if stop is not None else asyncio.Event()
        self.hurry = asyncio.Event()
        self._installed: list[signal.Signals] = []

    def __enter__(self) -> _StopSignals:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self._on_signal)
                self._installed.append(sig)
        return self

    def __exit__(self, *_: object) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._installed:
            loop.remove_signal_handler(sig)

    def _on_signal(self) -> None:
        if self.requested.is_set():
            self.hurry.set()
        self.requested.set()


async def _drain(
    server: grpc.aio.Server, grace: float, signals: _StopSignals, gate: ShutdownGate
) -> None:
    """Stop the server, giving in-flight calls ``grace`` seconds (cut short by a second
    signal); calls still running then are answered UNAVAILABLE by the gate, not CANCELLED."""
    stopping = asyncio.ensure_future(server.stop(grace + EXPIRY_ANSWER_S))
    hurry = asyncio.ensure_future(signals.hurry.wait())
    try:
        done, _ = await asyncio.wait({stopping, hurry}, timeout=grace,
                                     return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        if stopping not in done:
            if hurry in done:
                log.warning("second stop signal: ending in-flight calls")
            else:
                log.warning("grace period over: ending in-flight calls", calls=gate.running)
            gate.expire()
        await stopping
    finally:
        hurry.cancel()


async def _wait_for_stop(signals: _StopSignals, store: RedisConnection) -> None:
    """Until a stop signal; raises if the private Redis dies first (nothing left to serve)."""
    if store.embedded is None:
        await signals.requested.wait()
        return
    requested = asyncio.ensure_future(signals.requested.wait())
    died = asyncio.ensure_future(store.embedded.wait_exited())
    await asyncio.wait({requested, died}, return_when=asyncio.FIRST_COMPLETED)
    requested.cancel()
    died.cancel()
    if not signals.requested.is_set():
        log.error("embedded redis exited unexpectedly; stopping the broker", redis=store.url)
        raise EmbeddedRedisError(f"embedded redis at {store.url} exited unexpectedly")


async def _health(server: grpc.aio.Server) -> health_aio.HealthServicer:
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    for service in HEALTH_SERVICES:
        await health.set(service, health_pb2.HealthCheckResponse.SERVING)
    return health


def _build_server(
    config: BrokerConfig, app: BrokerApp, hangup: Hangup, authorizer: Authorizer | None
) -> tuple[grpc.aio.Server, int]:
    if authorizer is not None:
        hangup.add(authorizer.tokens.reload)
    certificates = certificate_files(config)
    if certificates is not None:
        hangup.add(certificates.reload)
    server = grpc.aio.server(
        interceptors=build_interceptors(config, authorizer),
        options=server_options(config),
    )
    decoding.register(server, [
        (app.broker_servicer, broker_service_pb2.DESCRIPTOR.services_by_name["BrokerService"]),
        (app.inspect_servicer, inspect_service_pb2.DESCRIPTOR.services_by_name["InspectService"]),
        (app.schedule_servicer,
         schedule_service_pb2.DESCRIPTOR.services_by_name["ScheduleService"]),
    ], app.shutdown_gate)
    services = (*HEALTH_SERVICES[1:], health_pb2.DESCRIPTOR.services_by_name["Health"].full_name)
    reflection.enable_server_reflection((*services, reflection.SERVICE_NAME), server)
    port = add_port(server, config.listen, certificates)
    return server, port


def _http_server(
    config: BrokerConfig, app: BrokerApp, redis: Redis, authorizer: Authorizer | None
) -> HttpServer | None:
    """The HTTP server of /metrics, /healthz and (``--dashboard``) the dashboard, not started;
    None when there is none (aiohttp is then not even imported)."""
    if config.http_address is None:
        return None
    from leasq_broker.observability.http import HttpServer, create_app

    # No *_created series: they would double the output for nothing.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    queues = QueueStats(TaskReader(redis, app.keys, app.scripts), app.clock.now_ms)
    registry.ensure_registered(queues)
    http_app = create_app(authorizer=authorizer, before_scrape=queues.refresh,
                          healthy=lambda: not app.shutdown_gate.closed)  # fmt: skip
    if config.dashboard:
        from leasq_broker.dashboard.site import install

        install(http_app, app.dashboard_services(leasq_version()), config.dashboard_path)
    return HttpServer(http_app)


async def _start_http(config: BrokerConfig, http: HttpServer) -> None:
    assert config.http_address is not None
    bound = await http.start(config.http_address, reuse_port=config.process_index is not None)
    log.info("http serving", address=bound, paths=["/metrics", "/healthz"])
    if config.dashboard:
        host, _, port = bound.rpartition(":")
        shown = "127.0.0.1" if host in ("", "0.0.0.0", "[::]", "::") else host
        log.info("dashboard serving", url=f"http://{shown}:{port}{config.dashboard_path}")


def _log_serving(config: BrokerConfig, address: str, redis_url: str) -> None:
    log.info("broker serving", address=address, redis=redact(redis_url),
             version=leasq_version(), embedded_redis=config.redis_url is None,
             transport=transport_name(certificate_files(config)),
             auth=_auth_name(config), max_message_bytes=config.max_message_bytes)  # fmt: skip


def _auth_name(config: BrokerConfig) -> str:
    """Which bearer tokens are accepted, for the log (never the tokens)."""
    kinds = [name for name, on in (("auth-token", config.auth_token is not None),
                                   ("tokens-file", config.auth_tokens_file is not None)) if on]
    return "+".join(kinds) or "off"


async def serve(
    config: BrokerConfig,
    *,
    ready: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run one broker until SIGTERM/SIGINT (or ``stop``), then shut down gracefully.

    ``ready`` is called with the bound address (``host:port``) once the broker serves.
    """
    with _StopSignals(stop) as signals, Hangup() as hangup:
        async with connect(config.redis_url, config.data_dir) as store:
            app = BrokerApp(config, store.client)
            authorizer = Authorizer.from_config(config)
            server, port = _build_server(config, app, hangup, authorizer)
            address = bound_address(config.listen, port)
            health = await _health(server)
            http = _http_server(config, app, store.client, authorizer)
            await app.start()
            try:
                await server.start()
                _log_serving(config, address, store.url)
                if http is not None:
                    await _start_http(config, http)
                if ready is not None:
                    ready(address)
                await _wait_for_stop(signals, store)
            finally:
                log.info("broker shutting down", grace_seconds=config.grace_seconds)
                app.begin_shutdown()
                await health.enter_graceful_shutdown()
                await _drain(server, config.grace_seconds, signals, app.shutdown_gate)
                if http is not None:
                    await http.stop()
                await app.stop()
    log.info("broker stopped")
