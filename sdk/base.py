"""What the sync and async clients share: settings, per-call arguments, request builders."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc

from leasq.v1 import inspect_service_pb2
from leasq_sdk.channel import (
    DEFAULT_KEEPALIVE_TIME,
    DEFAULT_KEEPALIVE_TIMEOUT,
    DEFAULT_TARGET,
    ChannelSettings,
    PemSource,
    call_metadata,
    read_pem,
)
from leasq_sdk.coalescing import check_linger
from leasq_sdk.convert import state_to_proto
from leasq_sdk.models import TaskState

DEFAULT_TIMEOUT = 10.0
DEFAULT_PAGE_SIZE = 100


class ClientBase:
    """Constructor and call plumbing of :class:`Client` and :class:`AsyncClient`.

    Args:
        target: ``host:port`` of the broker (or any gRPC target string).
        tls: ``False`` for plaintext; ``True`` for TLS with the system roots or
            ``root_certificates``; or ready ``grpc.ChannelCredentials`` (e.g. mutual TLS).
        root_certificates: PEM roots to trust (implies TLS): bytes, or a file path.
        tls_cert, tls_key: client certificate chain and private key for mutual TLS (implies
            TLS): PEM bytes, or file paths; both or neither.
        token: bearer token sent as ``authorization: Bearer <token>`` on every call.
        timeout: default deadline of every call, in seconds (``None``: no deadline). Each method
            takes ``rpc_timeout=`` to override it for one call. An idempotent call is retried
            (UNAVAILABLE, CANCELLED) within this deadline, with backoff; without a deadline it
            is retried until it succeeds or is refused. (``timeout=`` of ``enqueue`` is
            the task's own per-attempt time limit.)
        keepalive_time: seconds between keepalive pings while calls are in flight (``None``:
            off); keepalive_timeout: how long to wait for a ping's answer before the
            connection is taken as dead. The broker accepts pings every 10 s or slower.
        wait_for_ready: while the broker is unreachable, calls wait for it up to their deadline
            (default) instead of failing at once with :class:`BrokerUnavailable`.
        options: extra gRPC channel arguments.
        coalesce: coalesce concurrent ``enqueue`` calls of this client into ``EnqueueBatch``
            calls (default on; see :mod:`leasq_sdk.coalescing`): a call made while none is in
            flight still goes out at once, alone; ``False`` sends every call on its own.
        coalesce_linger: seconds (at most 0.001) a batch of calls that waited for the call in
            flight may wait for more before it is sent; 0 (default): sent at once.
        enqueue_stream: send each ``enqueue`` that goes out alone as a message on one
            long-lived ``EnqueueStream`` call (default on; about twice the rate of calls made
            in turn, see :mod:`leasq_sdk.enqueue_stream`); ``False``: as a unary ``Enqueue``.
            A broker without streams (or a token that may not use them) turns it off.
    """

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        tls: bool | grpc.ChannelCredentials = False,
        root_certificates: PemSource | None = None,
        tls_cert: PemSource | None = None,
        tls_key: PemSource | None = None,
        token: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        keepalive_time: float | None = DEFAULT_KEEPALIVE_TIME,
        keepalive_timeout: float = DEFAULT_KEEPALIVE_TIMEOUT,
        wait_for_ready: bool = True,
        options: Sequence[tuple[str, Any]] = (),
        coalesce: bool = True,
        coalesce_linger: float = 0.0,
        enqueue_stream: bool = True,
    ) -> None:
        self.settings = ChannelSettings(
            target=target,
            tls=tls,
            root_certificates=read_pem(root_certificates),
            certificate_chain=read_pem(tls_cert),
            private_key=read_pem(tls_key),
            token=token,
            keepalive_time=keepalive_time,
            keepalive_timeout=keepalive_timeout,
            options=tuple(options),
        )
        self._timeout = timeout
        self._metadata = call_metadata(token)
        self._wait_for_ready = wait_for_ready
        self._default_args = self._make_call_args(timeout)
        self._coalesce = coalesce
        self._coalesce_linger = check_linger(coalesce_linger)
        self._use_enqueue_stream = enqueue_stream
        self._connect()

    def _connect(self) -> None:
        """Open the channels and stubs (the sync and async clients do this differently)."""
        raise NotImplementedError

    @property
    def target(self) -> str:
        """The broker address this client talks to."""
        return self.settings.target

    @property
    def timeout(self) -> float | None:
        """The default deadline of a call, in seconds."""
        return self._timeout

    def _call_args(self, rpc_timeout: float | None) -> dict[str, Any]:
        """Keyword arguments of one call: deadline, metadata, wait_for_ready."""
        if rpc_timeout is None:
            return self._default_args
        return self._make_call_args(rpc_timeout)

    def _make_call_args(self, timeout: float | None) -> dict[str, Any]:
        return {
            "timeout": timeout,
            "metadata": self._metadata,
            "wait_for_ready": self._wait_for_ready,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(target={self.settings.target!r})"


def list_tasks_request(
    queue: str, state: TaskState | str, page_size: int, page_token: str
) -> inspect_service_pb2.ListTasksRequest:
    """The ListTasks request; ``state`` may be a :class:`TaskState` or its name."""
    return inspect_service_pb2.ListTasksRequest(
        queue=queue, state=state_to_proto(state), page_size=page_size, page_token=page_token
    )
