"""Server interceptors: request ids, access logs and bearer-token auth, in one hop per call.

Every Enqueue, Lease and Ack goes through here, so the work per call is kept to a metadata scan
and a context bind; the access log is written at debug level only. :func:`build_interceptors`
installs nothing at all when auth is off and the log level is above debug, which is the fast
path of a production broker.

grpc.aio runs the interceptor chain and the handler in one ``contextvars.Context`` that starts
empty for every call, so the request id bound here shows up in every log line of the call.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import itertools
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias, cast

import grpc
import grpc.aio
import structlog
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from leasq_broker.config import BrokerConfig
from leasq_broker.logs import level_number

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


def unauthenticated_status(message: str) -> grpc.Status:
    """UNAUTHENTICATED with the ErrorInfo detail every Leasq refusal carries."""
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.ErrorInfo(reason="UNAUTHENTICATED", domain=ERROR_DOMAIN))
    status = status_pb2.Status(code=code_pb2.UNAUTHENTICATED, message=message, details=[detail])
    return rpc_status.to_status(status)


_MISSING_TOKEN = unauthenticated_status(
    "missing bearer token: send metadata 'authorization: Bearer <token>'"
)
_WRONG_TOKEN = unauthenticated_status("invalid bearer token")


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


def _rejecting(handler: Handler, status: grpc.Status) -> Handler:
    """A handler of the same shape as ``handler`` that only aborts with ``status``."""

    async def reject(_request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await context.abort_with_status(status)

    des, ser = handler.request_deserializer, handler.response_serializer
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(reject, des, ser)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(reject, des, ser)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(reject, des, ser)
    return grpc.unary_unary_rpc_method_handler(reject, des, ser)


def _status_name(context: grpc.aio.ServicerContext[Any, Any], failed: BaseException | None) -> str:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    if failed is None:
        return "OK"
    return "CANCELLED" if isinstance(failed, asyncio.CancelledError) else "UNKNOWN"


def _logged(method: str, handler: Handler) -> Handler:
    """Wraps a unary-unary handler to log method, status code and duration when it ends."""
    # The stubs type behaviors for the sync server; under grpc.aio they take an aio context.
    inner = cast(Callable[[Any, Any], Any], handler.unary_unary)

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
    """Binds the request id, checks the bearer token, wraps unary calls with the access log."""

    def __init__(self, *, auth_token: str | None, access_log: bool) -> None:
        self._expected = f"Bearer {auth_token}".encode() if auth_token else None
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
        if self._expected is not None and not method.startswith(OPEN_METHOD_PREFIXES):
            refusal = self._refusal(authorization)
            if refusal is not None:
                log.info("call refused: not authenticated", method=method)
                handler = _rejecting(handler, refusal)
        if self._access_log and handler.unary_unary is not None:
            return _logged(method, handler)
        return handler

    def _refusal(self, authorization: str | None) -> grpc.Status | None:
        assert self._expected is not None
        if authorization is None:
            return _MISSING_TOKEN
        if hmac.compare_digest(authorization.encode(), self._expected):
            return None
        return _WRONG_TOKEN


def build_interceptors(config: BrokerConfig) -> list[grpc.aio.ServerInterceptor]:
    """The interceptors this configuration needs: none on the fast path."""
    access_log = level_number(config.log_level) <= level_number("debug")
    if config.auth_token is None and not access_log:
        return []
    return [EdgeInterceptor(auth_token=config.auth_token, access_log=access_log)]
