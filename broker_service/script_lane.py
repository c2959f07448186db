"""A direct, pipelined connection to one Redis for the transition scripts.

redis-py's asyncio client spends about 300 us of broker CPU on every round trip (connection
pool, retry and timeout wrappers, a ``StreamReader`` between the socket and the parser): on the
one-task Enqueue, Lease and Ack paths that was more than gRPC and the scripts together. A lane
is one connection driven by an asyncio protocol: a call packs its commands with hiredis, writes
them in one write, and waits for as many replies; hiredis parses replies as bytes arrive and
they are handed out in order (Redis answers a connection's commands in the order it got them).
Calls from many coroutines share the connection, pipelined, without waiting for each other,
and since each call is one write, a transaction's MULTI ... EXEC is never split.

What stays as with redis-py:

- error replies are redis-py's exception classes (``NoScriptError``, ``OutOfMemoryError``, ...),
  parsed by redis-py's own ``parse_error``, with the same messages;
- a transaction aborted by Redis (EXECABORT) raises the error of the command that caused it;
- the connection authenticates, selects the database and uses TLS as the URL says
  (``socket_timeout`` and ``socket_connect_timeout`` apply too).

What differs, on purpose: a call is never sent twice. redis-py retries a command whose
connection failed even after it was written, which may run a script twice. A lane fails such a
call with ``ConnectionError`` (its outcome is unknown, as with any lost reply; the caller
answers UNAVAILABLE); only a call that finds the connection already closed, before writing
anything, opens a new one.

Only for one Redis (``redis://``, ``rediss://``, ``unix://``, the embedded Redis):
:func:`lane_for` returns ``None`` for Sentinel and Cluster clients, whose redis-py connections
follow failovers, and for options a lane does not implement (RESP3, credential providers).
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import Sequence
from typing import Any

import hiredis
from redis._parsers.base import BaseParser
from redis.asyncio import Redis
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.asyncio.sentinel import SentinelManagedConnection
from redis.exceptions import (
    ConnectionError as RedisConnectionError,
)
from redis.exceptions import (
    ExecAbortError,
    InvalidResponse,
    ResponseError,
    WatchError,
)
from redis.exceptions import (
    TimeoutError as RedisTimeoutError,
)

from leasq_broker.cluster_slots import is_cluster

Command = Sequence[str | bytes | int | float]

# Connection options a lane implements; any other one set on the client keeps it on redis-py.
_KNOWN_OPTIONS = frozenset({
    "host", "port", "path", "db", "username", "password", "socket_timeout",
    "socket_connect_timeout", "client_name", "ssl_cert_reqs", "ssl_ca_certs", "ssl_ca_data",
    "ssl_certfile", "ssl_keyfile", "ssl_check_hostname", "ssl_min_version", "ssl_ciphers",
    "ssl_ca_path", "ssl_keyfile_password", "socket_keepalive", "socket_keepalive_options",
    "retry_on_timeout", "retry_on_error", "retry", "health_check_interval", "encoder_class",
    "himport_registry", "maint_notifications_pool_handler", "maint_notifications_config",
    "orig_host_address", "orig_socket_timeout", "orig_socket_connect_timeout", "lib_name",
    "lib_version", "redis_connect_func", "protocol",
})  # fmt: skip
_DEFAULT_CONNECT_TIMEOUT_S = 5.0


def lane_for(redis: Redis) -> ScriptLane | None:
    """A lane to the Redis ``redis`` talks to, or ``None`` when its connections must stay on
    redis-py (Sentinel, Cluster, RESP3, an option the lane does not implement)."""
    if is_cluster(redis):
        return None
    pool = redis.connection_pool
    connection_class = pool.connection_class
    kwargs = dict(pool.connection_kwargs)
    # Subclasses count as what they extend (pack_with_hiredis' only changes packing), except
    # Sentinel's, which looks the primary up on every connect.
    if (not issubclass(connection_class, (Connection, UnixDomainSocketConnection))
            or issubclass(connection_class, SentinelManagedConnection)):  # fmt: skip
        return None
    if set(kwargs) - _KNOWN_OPTIONS or str(kwargs.get("protocol", 2)) not in ("2", "None"):
        return None
    return ScriptLane(connection_class, kwargs)


class _Pending:
    """One call: how many replies it waits for, those received, and its future."""

    __slots__ = ("expected", "future", "replies")

    def __init__(self, expected: int, future: asyncio.Future[list[Any]]) -> None:
        self.expected = expected
        self.replies: list[Any] = []
        self.future = future


class _Wire(asyncio.Protocol):
    """One connection: writes packed commands, hands replies to the calls in order."""

    def __init__(self) -> None:
        self._reader = hiredis.Reader(protocolError=InvalidResponse,
                                      replyError=BaseParser.parse_error)  # fmt: skip
        self._waiting: collections.deque[_Pending] = collections.deque()
        self._transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        waiting = self._waiting
        try:
            while (reply := self._reader.gets()) is not False:
                call = waiting[0]
                call.replies.append(reply)
                if len(call.replies) == call.expected:
                    waiting.popleft()
                    if not call.future.done():
                        call.future.set_result(call.replies)
        except (InvalidResponse, IndexError) as error:  # not RESP, or a reply nobody asked for
            self.fail(RedisConnectionError(f"Redis sent an unreadable reply ({error})"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        reason = f" ({exc})" if exc else ""
        self._fail_waiting(RedisConnectionError(f"the connection to Redis was lost{reason}"))

    def send(self, data: bytes, expected: int) -> asyncio.Future[list[Any]]:
        """Write ``data`` (``expected`` commands); the future gets their replies."""
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        assert self._transport is not None
        self._waiting.append(_Pending(expected, future))
        self._transport.write(data)
        return future

    def fail(self, error: Exception) -> None:
        """Close the connection; every call still waiting fails with ``error``."""
        self._fail_waiting(error)
        self.closed = True
        if self._transport is not None:
            self._transport.abort()

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    def _fail_waiting(self, error: Exception) -> None:
        while self._waiting:
            call = self._waiting.popleft()
            if not call.future.done():
                call.future.set_exception(error)
                call.future.exception()  # a caller gone (timed out) must not log it unread


class ScriptLane:
    """Pipelined calls on one connection, opened when first needed and again after a loss."""

    def __init__(self, connection_class: type[Connection | UnixDomainSocketConnection],
                 kwargs: dict[str, Any]) -> None:
        self._connection_class = connection_class
        self._kwargs = kwargs
        self._wire: _Wire | None = None
        self._connecting: asyncio.Future[_Wire] | None = None
        timeout = kwargs.get("socket_timeout")
        self._timeout: float | None = float(timeout) if timeout else None

    async def execute(self, commands: Sequence[Command], *, transaction: bool = False
                      ) -> list[Any]:  # fmt: skip
        """The replies of ``commands`` (error replies as exception objects, in place), sent
        in one write; ``transaction``: wrapped in MULTI/EXEC, replies are EXEC's."""
        if not commands:  # nothing would answer: a call waiting for no reply would never end
            return []
        wire = self._wire
        if wire is None or wire.closed:
            wire = await self._connected()  # nothing of this call was written yet
        if transaction:
            commands = [("MULTI",), *commands, ("EXEC",)]
        replies = await self._await(wire, wire.send(_packed(commands), len(commands)))
        return _unwrap_transaction(replies) if transaction else replies

    async def aclose(self) -> None:
        if self._wire is not None:
            self._wire.close()
            self._wire = None

    async def _await(self, wire: _Wire, future: asyncio.Future[list[Any]]) -> list[Any]:
        if self._timeout is None:
            return await future
        try:
            return await asyncio.wait_for(asyncio.shield(future), self._timeout)
        except TimeoutError:
            error = RedisTimeoutError(f"Redis did not answer within {self._timeout:g} s")
            wire.fail(error)  # its later replies would be handed to the wrong calls
            raise error from None

    async def _connected(self) -> _Wire:
        """The open wire; concurrent callers share one connection attempt."""
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._open())
        connecting = self._connecting
        try:
            self._wire = await asyncio.shield(connecting)
            return self._wire
        finally:
            if self._connecting is connecting and connecting.done():
                self._connecting = None

    async def _open(self) -> _Wire:
        loop = asyncio.get_running_loop()
        kwargs = self._kwargs
        if issubclass(self._connection_class, UnixDomainSocketConnection):
            opening = loop.create_unix_connection(_Wire, kwargs["path"])
        else:
            context = self._tls_context()
            opening = loop.create_connection(
                _Wire,
                kwargs.get("host", "localhost"),
                int(kwargs.get("port", 6379)),
                ssl=context,
                server_hostname=kwargs.get("host") if context else None,
            )
        timeout = kwargs.get("socket_connect_timeout") or self._timeout
        try:
            _, wire = await asyncio.wait_for(opening, timeout or _DEFAULT_CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as error:
            raise RedisConnectionError(f"cannot connect to Redis: {error}") from error
        try:
            await self._handshake(wire)
        except BaseException:
            wire.close()
            raise
        return wire

    async def _handshake(self, wire: _Wire) -> None:
        """AUTH, SELECT and CLIENT SETNAME as the client's options ask."""
        kwargs = self._kwargs
        commands: list[Command] = []
        if kwargs.get("password"):
            username = kwargs.get("username")
            commands.append(("AUTH", username, kwargs["password"]) if username
                            else ("AUTH", kwargs["password"]))  # fmt: skip
        if int(kwargs.get("db") or 0):
            commands.append(("SELECT", int(kwargs["db"])))
        if kwargs.get("client_name"):
            commands.append(("CLIENT", "SETNAME", kwargs["client_name"]))
        if not commands:
            return
        for reply in await self._await(wire, wire.send(_packed(commands), len(commands))):
            if isinstance(reply, Exception):
                raise reply

    def _tls_context(self) -> ssl.SSLContext | None:
        if not issubclass(self._connection_class, SSLConnection):
            return None
        # redis-py's own connection object builds the context from the same options
        connection = self._connection_class(**self._kwargs)
        context: ssl.SSLContext = connection.ssl_context.get()
        return context


def _packed(commands: Sequence[Command]) -> bytes:
    """The commands in RESP, as hiredis packs them (the bytes redis-py would send)."""
    return b"".join([hiredis.pack_command(tuple(c)) for c in commands])  # type: ignore[arg-type]


def _unwrap_transaction(replies: list[Any]) -> list[Any]:
    """EXEC's replies, raising what redis-py raises for a transaction that did not run."""
    executed = replies[-1]
    queued_errors = [reply for reply in replies[:-1] if isinstance(reply, ResponseError)]
    if isinstance(executed, ExecAbortError):
        raise queued_errors[0] if queued_errors else executed
    if isinstance(executed, Exception):
        raise executed
    if executed is None:
        raise WatchError("the transaction was aborted")
    return list(executed)
