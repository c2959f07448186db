"""Channel construction shared by the sync and async clients: TLS, token, keepalive, retries.

Retries. Whether an Enqueue may be retried depends on the *request*: with a task_id a second
attempt is harmless (the broker answers TASK_ID_CONFLICT if the first one landed), without one
it could add the task twice. So a client opens two channels to the same target with identical
arguments: a *retrying* one, whose interceptor (:mod:`leasq_sdk.retry`) retries UNAVAILABLE and
CANCELLED for the idempotent methods until the call's deadline, with exponential backoff and
jitter, and a *plain* one for everything else. gRPC shares one connection between channels
whose arguments match (its subchannel pool), so this costs no second TCP connection.

Broker down. Every call is made with ``wait_for_ready`` (unless the client turns it off): while
the broker cannot be reached, a call waits for it up to the call's deadline instead of failing
at once, and is only sent once a connection is up. Reconnection backs off from 0.1 s up to
0.8 s (gRPC adds +-20% jitter), so a restarted broker is reached within about a second of
serving again; a connection attempt that hangs (an address that drops packets) is given up
after 2 s.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc

from leasq_sdk.retry import AioRetryInterceptor, RetryInterceptor

DEFAULT_TARGET = "127.0.0.1:50051"
#: Keepalive ping interval and answer timeout, in seconds. The broker accepts pings every 10 s
#: or slower; a peer that allows less must be given a longer interval (or None: no pings).
DEFAULT_KEEPALIVE_TIME = 30.0
DEFAULT_KEEPALIVE_TIMEOUT = 10.0

#: Methods that are safe to send twice. Enqueue and EnqueueBatch go through the retrying
#: channel only when every task carries a task_id.
IDEMPOTENT_METHODS: tuple[str, ...] = (
    "leasq.v1.BrokerService/Enqueue",
    "leasq.v1.BrokerService/EnqueueBatch",
    "leasq.v1.InspectService/GetTask",
    "leasq.v1.InspectService/ListQueues",
    "leasq.v1.InspectService/GetQueueStats",
    "leasq.v1.InspectService/ListTasks",
    "leasq.v1.InspectService/PauseQueue",
    "leasq.v1.InspectService/ResumeQueue",
    "leasq.v1.InspectService/GetQueueSettings",
    "leasq.v1.InspectService/UpdateQueueSettings",
    "leasq.v1.InspectService/ListGroups",
    "leasq.v1.InspectService/ListGroupMembers",
    "leasq.v1.InspectService/ListWorkers",
    "leasq.v1.InspectService/QuietWorker",
    "leasq.v1.InspectService/StopWorker",
    "leasq.v1.InspectService/GetQueueHistory",
    "leasq.v1.InspectService/SearchTasks",
    "leasq.v1.InspectService/GetServerInfo",
    "leasq.v1.ScheduleService/UpsertSchedule",
    "leasq.v1.ScheduleService/GetSchedule",
    "leasq.v1.ScheduleService/ListSchedules",
    "leasq.v1.ScheduleService/PauseSchedule",
    "leasq.v1.ScheduleService/ResumeSchedule",
    "leasq.v1.ScheduleService/ListScheduleFires",
)

#: Reconnect backoff of every channel, in milliseconds: first pause, longest pause, and the
#: least time a connection attempt is given before it counts as failed.
INITIAL_RECONNECT_BACKOFF_MS = 100
MAX_RECONNECT_BACKOFF_MS = 800
MIN_CONNECT_TIMEOUT_MS = 2_000
_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ChannelSettings:
    """How to reach a broker. Built by the clients from their constructor arguments."""

    target: str = DEFAULT_TARGET
    #: False: plaintext. True: TLS with the system roots, or ``root_certificates`` (PEM).
    #: A ``grpc.ChannelCredentials``: used as given (e.g. for mutual TLS).
    tls: bool | grpc.ChannelCredentials = False
    root_certificates: bytes | None = None
    #: Client certificate chain and private key (PEM) for mutual TLS; both or neither.
    certificate_chain: bytes | None = None
    private_key: bytes | None = None
    #: Sent as ``authorization: Bearer <token>`` on every call.
    token: str | None = None
    #: Seconds between keepalive pings while calls are in flight (None: no pings). The server
    #: must permit the interval, or it closes the connection with "too many pings".
    keepalive_time: float | None = DEFAULT_KEEPALIVE_TIME
    keepalive_timeout: float = DEFAULT_KEEPALIVE_TIMEOUT
    #: Extra ``(name, value)`` channel arguments, applied last.
    options: Sequence[tuple[str, Any]] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if (self.certificate_chain is None) != (self.private_key is None):
            raise ValueError("tls_cert and tls_key must be given together")


def call_metadata(token: str | None) -> tuple[tuple[str, str], ...] | None:
    """The metadata every call carries: the bearer token, if any."""
    return (("authorization", f"Bearer {token}"),) if token else None


def channel_options(settings: ChannelSettings) -> list[tuple[str, Any]]:
    """Channel arguments: message limits, keepalive and reconnect backoff. Retries are not a
    gRPC policy here but the interceptor of :func:`open_channel` / :func:`open_aio_channel`."""
    options: list[tuple[str, Any]] = [
        # Transparent retries only: gRPC re-sends a call that never reached the broker.
        ("grpc.enable_retries", 1),
        ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
        ("grpc.initial_reconnect_backoff_ms", INITIAL_RECONNECT_BACKOFF_MS),
        ("grpc.max_reconnect_backoff_ms", MAX_RECONNECT_BACKOFF_MS),
        ("grpc.min_reconnect_backoff_ms", MIN_CONNECT_TIMEOUT_MS),
    ]
    if settings.keepalive_time is not None:
        options += [
            ("grpc.keepalive_time_ms", int(settings.keepalive_time * 1000)),
            ("grpc.keepalive_timeout_ms", int(settings.keepalive_timeout * 1000)),
        ]
    options.extend(settings.options)
    return options


def credentials(settings: ChannelSettings) -> grpc.ChannelCredentials | None:
    """TLS credentials, or None for a plaintext channel."""
    if isinstance(settings.tls, grpc.ChannelCredentials):
        return settings.tls
    if settings.tls or settings.root_certificates is not None or settings.certificate_chain:
        return tls_credentials(
            settings.root_certificates, settings.certificate_chain, settings.private_key
        )
    return None


PemSource = bytes | str | os.PathLike[str]


def read_pem(source: PemSource | None) -> bytes | None:
    """PEM bytes as given, or read from a file path (``str`` or ``Path``)."""
    if source is None or isinstance(source, bytes):
        return source
    with open(source, "rb") as file:
        return file.read()


def tls_credentials(
    root_certificates: bytes | None = None,
    certificate_chain: bytes | None = None,
    private_key: bytes | None = None,
) -> grpc.ChannelCredentials:
    """TLS credentials: trust ``root_certificates`` (None: the system roots) and, for mutual
    TLS, present ``certificate_chain`` with ``private_key`` (PEM, both or neither)."""
    if (certificate_chain is None) != (private_key is None):
        raise ValueError("a client certificate needs its private key, and the key its certificate")
    return grpc.ssl_channel_credentials(root_certificates, private_key, certificate_chain)


def open_channel(settings: ChannelSettings, retry_methods: Sequence[str] = ()) -> grpc.Channel:
    """A sync channel; calls of ``retry_methods`` are retried until their deadline."""
    options = channel_options(settings)
    creds = credentials(settings)
    if creds is None:
        channel = grpc.insecure_channel(settings.target, options=options)
    else:
        channel = grpc.secure_channel(settings.target, creds, options=options)
    if not retry_methods:
        return channel
    return grpc.intercept_channel(channel, RetryInterceptor(retry_methods))


def open_aio_channel(
    settings: ChannelSettings, retry_methods: Sequence[str] = ()
) -> grpc.aio.Channel:
    """A ``grpc.aio`` channel; calls of ``retry_methods`` are retried until their deadline."""
    options = channel_options(settings)
    creds = credentials(settings)
    interceptors = [AioRetryInterceptor(retry_methods)] if retry_methods else None
    if creds is None:
        return grpc.aio.insecure_channel(settings.target, options=options,
                                         interceptors=interceptors)  # fmt: skip
    return grpc.aio.secure_channel(settings.target, creds, options=options,
                                   interceptors=interceptors)  # fmt: skip
