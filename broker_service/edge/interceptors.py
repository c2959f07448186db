"""Server interceptors: request ids, access logs, bearer tokens and roles, in one hop per call.

Every Enqueue, Lease and Ack goes through here, so the work per call is kept to a metadata scan
and a context bind; the access log is written at debug level only. :func:`build_interceptors`
installs nothing at all when auth is off and the log level is above debug, which is the fast
path of a production broker.

grpc.aio runs the interceptor chain and the handler in one ``contextvars.Context`` that starts
empty for every call, so the request id bound here shows up in every log line of the call.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import math
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias, cast

import grpc
import grpc.aio
import structlog
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from leasq_broker.config import BrokerConfig
from leasq_broker.edge.auth_limit import FailureLimiter, peer_host
from leasq_broker.edge.roles import Authorizer, rule_for
from leasq_broker.edge.tokens import Principal
from leasq_broker.logs import level_number
from leasq_broker.observability.rpc import count_refusal

log = structlog.get_logger(__name__)

ERROR_DOMAIN = "leasq.v1"
REQUEST_ID_KEY = "x-request-id"
MAX_REQUEST_ID_LENGTH = 128
# Probes and tooling must work without a token.
OPEN_METHOD_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Continuation: TypeAlias = Callable[[grpc.HandlerCallDetails], Awaitable["Handler | None"]]


def _refusal_status(code: int, reason: str, message: str, retry_after: float = 0.0) -> grpc.Status:
    """A status with the ErrorInfo detail every Leasq refusal carries (and RetryInfo)."""
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN))
    details = [info]
    if retry_after > 0:
        retry = any_pb2.Any()
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(retry_after * 1e9))
        retry.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
        details.append(retry)
    return rpc_status.to_status(status_pb2.Status(code=code, message=message, details=details))


def unauthenticated_status(message: str) -> grpc.Status:
    """UNAUTHENTICATED with ErrorInfo reason UNAUTHENTICATED."""
    return _refusal_status(code_pb2.UNAUTHENTICATED, "UNAUTHENTICATED", message)


def permission_denied_status(message: str) -> grpc.Status:
    """PERMISSION_DENIED with ErrorInfo reason PERMISSION_DENIED."""
    return _refusal_status(code_pb2.PERMISSION_DENIED, "PERMISSION_DENIED", message)


def rate_limited_status(retry_after: float) -> grpc.Status:
    """RESOURCE_EXHAUSTED (reason UNAUTHENTICATED, RetryInfo) for a peer over its failures."""
    seconds = max(1, math.ceil(retry_after))
    return _refusal_status(
        code_pb2.RESOURCE_EXHAUSTED, "UNAUTHENTICATED",
        f"too many failed authentication attempts from this address; retry in {seconds} s "
        "with a valid token", float(seconds),
    )  # fmt: skip


def _read_metadata(details: grpc.HandlerCallDetails) -> tuple[str | None, str | None]:
    """The request id and the authorization value, in one pass over the metadata."""
    request_id: str | None = None
    authorization: str | None = None
    for key, value in details.invocation_metadata or ():
        if key == REQUEST_ID_KEY and isinstance(value, str):
            request_id = value[:MAX_REQUEST_ID_LENGTH]
        elif key == "authorization" and isinstance(value, str):
            authorization = value
    return request_id, authorization


def _rejecting(handler: Handler, status: Callable[[str], grpc.Status]) -> Handler:
    """A handler of the same shape as ``handler`` that only aborts with ``status(peer)``."""

    async def reject(_request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await context.abort_with_status(status(context.peer()))

    des, ser = handler.request_deserializer, handler.response_serializer
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(reject, des, ser)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(reject, des, ser)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(reject, des, ser)
    return grpc.unary_unary_rpc_method_handler(reject, des, ser)


def _unary_behavior(handler: Handler) -> Callable[[Any, Any], Any]:
    # The stubs type behaviors for the sync server; under grpc.aio they take an aio context.
    return cast(Callable[[Any, Any], Any], handler.unary_unary)


def _queue_checked(handler: Handler, authorizer: Authorizer, principal: Principal, method: str,
                   denied: Callable[[str, Principal, str], Callable[[str], grpc.Status]],
                   ) -> Handler:  # fmt: skip
    """Wraps a unary-unary handler to check the queues its request names before it runs;
    ``denied(method, principal, message)`` makes the refusal."""
    inner = _unary_behavior(handler)
    queues_of = rule_for(method).queues_of
    assert queues_of is not None

    async def behavior(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        # A body that did not parse reaches the handler as a stand-in, which it refuses.
        decision = (authorizer.authorize(principal, method, queues_of(request))
                    if isinstance(request, Message) else None)  # fmt: skip
        if decision is not None and not decision.allowed:
            refusal = denied(method, principal, decision.message)
            await context.abort_with_status(refusal(context.peer()))
        result = inner(request, context)
        return await result if inspect.isawaitable(result) else result

    return grpc.unary_unary_rpc_method_handler(
        behavior, handler.request_deserializer, handler.response_serializer
    )


def _status_name(context: grpc.aio.ServicerContext[Any, Any], failed: BaseException | None) -> str:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    if failed is None:
        return "OK"
    return "CANCELLED" if isinstance(failed, asyncio.CancelledError) else "UNKNOWN"


def _logged(method: str, handler: Handler) -> Handler:
    """Wraps a unary-unary handler to log method, status code and duration when it ends."""
    inner = _unary_behavior(handler)

    async def behavior(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        started = time.perf_counter()
        failed: BaseException | None = None
        try:
            result = inner(request, context)
            return await result if inspect.isawaitable(result) else result
        except BaseException as exc:
            failed = exc
            raise
        finally:
            log.debug("rpc", method=method, code=_status_name(context, failed),
                      duration_ms=round((time.perf_counter() - started) * 1000, 3))  # fmt: skip

    return grpc.unary_unary_rpc_method_handler(
        behavior, handler.request_deserializer, handler.response_serializer
    )


class EdgeInterceptor(grpc.aio.ServerInterceptor):
    """Binds the request id, authenticates and authorizes, wraps unary calls with the access log.

    The role check needs only the method and happens here; a token limited to queue patterns
    gets its queues checked on the deserialized request, just before the servicer runs.
    Failed authentication is answered by :meth:`_unauthenticated`, limited per peer address.
    """

    def __init__(self, *, authorizer: Authorizer | None, access_log: bool) -> None:
        self._authorizer = authorizer
        self._failures = FailureLimiter()
        self._access_log = access_log
        # Ids made here: a random per-process prefix and a counter, cheaper than random bytes
        # per call and still unique across brokers.
        self._id_prefix = os.urandom(6).hex()
        self._id_counter = itertools.count(1)

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler | None:
        request_id, authorization = _read_metadata(handler_call_details)
        if request_id is None:
            request_id = f"{self._id_prefix}-{next(self._id_counter)}"
        structlog.contextvars.bind_contextvars(request_id=request_id)
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        if self._authorizer is not None and not method.startswith(OPEN_METHOD_PREFIXES):
            handler = self._guarded(self._authorizer, method, authorization, handler)
        if self._access_log and handler.unary_unary is not None:
            return _logged(method, handler)
        return handler

    def _guarded(self, authorizer: Authorizer, method: str, authorization: str | None,
                 handler: Handler) -> Handler:  # fmt: skip
        token = authorization[7:] if authorization and authorization[:7] == "Bearer " else None
        known = authorizer.authenticate(token)
        principal = known.principal
        if principal is None:
            missing = authorization is None
            return _rejecting(handler, self._unauthenticated(method, known.message, missing))
        decision = authorizer.authorize(principal, method)
        if not decision.allowed:
            return _rejecting(handler, self._denied(method, principal, decision.message))
        if not authorizer.needs_request(principal, method):
            return handler
        if handler.unary_unary is None:  # no single request to read the queues from
            message = (f"token {principal.describe()} may not call {method}: "
                       "a streaming call needs a token for every queue")  # fmt: skip
            return _rejecting(handler, self._denied(method, principal, message))
        return _queue_checked(handler, authorizer, principal, method, self._denied)

    def _denied(self, method: str, principal: Principal,
                message: str) -> Callable[[str], grpc.Status]:  # fmt: skip
        """PERMISSION_DENIED for a call, logged (token name, never the token) within budget."""

        def status(peer: str) -> grpc.Status:
            if self._failures.may_log():
                log.info("call refused: permission denied", method=method, token=principal.name,
                         peer=peer_host(peer), unlogged_before=self._failures.take_unlogged())
            count_refusal(method, grpc.StatusCode.PERMISSION_DENIED)
            return permission_denied_status(message)

        return status

    def _unauthenticated(self, method: str, message: str,
                         missing: bool) -> Callable[[str], grpc.Status]:  # fmt: skip
        """The status of a failed attempt from a peer: UNAUTHENTICATED, or RESOURCE_EXHAUSTED
        beyond the peer's allowance. Logged (without the token) within the log budget."""

        def status(peer: str) -> grpc.Status:
            host = peer_host(peer)
            wait = self._failures.allow(host)
            if self._failures.may_log():
                log.warning("call refused: not authenticated", method=method, peer=host,
                            token_sent=not missing, rate_limited=wait is not None,
                            unlogged_before=self._failures.take_unlogged())  # fmt: skip
            count_refusal(method, grpc.StatusCode.UNAUTHENTICATED if wait is None
                          else grpc.StatusCode.RESOURCE_EXHAUSTED)  # fmt: skip
            if wait is not None:
                return rate_limited_status(wait)
            return unauthenticated_status(message)

        return status


def build_interceptors(
    config: BrokerConfig, authorizer: Authorizer | None = None
) -> list[grpc.aio.ServerInterceptor]:
    """The interceptors this configuration needs: none on the fast path (no auth configured,
    log level above debug). ``authorizer`` defaults to the one of ``config``."""
    access_log = level_number(config.log_level) <= level_number("debug")
    if authorizer is None:
        authorizer = Authorizer.from_config(config)
    if authorizer is None and not access_log:
        return []
    return [EdgeInterceptor(authorizer=authorizer, access_log=access_log)]
