"""The one place where domain errors become gRPC statuses.

Each refusal carries a ``google.rpc.ErrorInfo`` (domain ``leasq.v1``, the reason name) and, for
invalid fields, a ``google.rpc.BadRequest`` naming the field, so that clients in any language can
branch on machine-readable details instead of parsing messages.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import grpc
import structlog
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from leasq.v1 import task_pb2
from leasq_broker.errors import (
    DuplicateTask,
    GroupNotFound,
    InvalidField,
    LeaseLost,
    LeasqError,
    PayloadTooLarge,
    QueueNotEmpty,
    QueueNotFound,
    ScheduleNotFound,
    StorageUnavailable,
    TaskIdConflict,
    TaskNotFound,
    TooManyWaitingLeases,
    Unauthenticated,
    WorkerNotFound,
    WrongState,
)

log = structlog.get_logger(__name__)

ERROR_DOMAIN = "leasq.v1"

_CODES: list[tuple[type[LeasqError], grpc.StatusCode]] = [
    (InvalidField, grpc.StatusCode.INVALID_ARGUMENT),
    (PayloadTooLarge, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (TooManyWaitingLeases, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (TaskIdConflict, grpc.StatusCode.ALREADY_EXISTS),
    (DuplicateTask, grpc.StatusCode.ALREADY_EXISTS),
    (TaskNotFound, grpc.StatusCode.NOT_FOUND),
    (ScheduleNotFound, grpc.StatusCode.NOT_FOUND),
    (GroupNotFound, grpc.StatusCode.NOT_FOUND),
    (QueueNotFound, grpc.StatusCode.NOT_FOUND),
    (WorkerNotFound, grpc.StatusCode.NOT_FOUND),
    (QueueNotEmpty, grpc.StatusCode.FAILED_PRECONDITION),
    (LeaseLost, grpc.StatusCode.FAILED_PRECONDITION),
    (WrongState, grpc.StatusCode.FAILED_PRECONDITION),
    (StorageUnavailable, grpc.StatusCode.UNAVAILABLE),
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
]


def status_code(error: LeasqError) -> grpc.StatusCode:
    for kind, code in _CODES:
        if isinstance(error, kind):
            return code
    return grpc.StatusCode.INTERNAL


def _field(error: LeasqError) -> str:
    return getattr(error, "field", "")


def to_rich_status(error: LeasqError) -> grpc.Status:
    """The gRPC status of a domain error, with ErrorInfo and BadRequest details."""
    code = status_code(error)
    details = []
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN))
    details.append(info)
    if field := _field(error):
        bad = any_pb2.Any()
        bad.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=field,
                                                                description=error.message)
                ]
            )
        )
        details.append(bad)
    status = status_pb2.Status(code=code.value[0], message=error.message, details=details)
    return rpc_status.to_status(status)


def item_error(error: LeasqError) -> task_pb2.ItemError:
    """The per-item form used in batch responses."""
    return task_pb2.ItemError(
        code=status_code(error).value[0], reason=error.reason, message=error.message,
        field=_field(error),
    )


def storage_error(error: Exception) -> LeasqError:
    """Translate a Redis failure into the domain error a caller can act on."""
    if _out_of_memory(error):
        return StorageUnavailable("Redis is out of memory (maxmemory reached); retry later")
    return StorageUnavailable(f"Redis is unreachable ({error.__class__.__name__}); retry later")


def domain_error(error: Exception) -> LeasqError | None:
    """What a client is told for ``error`` raised while serving it, as :func:`grpc_edge`
    answers a unary call; None for anything else (a bug, to be logged)."""
    if isinstance(error, LeasqError):
        return error
    if isinstance(error, (RedisConnectionError, RedisTimeoutError, ConnectionError)) or (
            _out_of_memory(error)):
        return storage_error(error)
    return None


def _out_of_memory(error: Exception) -> bool:
    """redis-py raises OutOfMemoryError (its message without the "OOM" code) for Redis' OOM."""
    return isinstance(error, OutOfMemoryError) or (
        isinstance(error, ResponseError) and str(error).startswith("OOM"))


Reply = TypeVar("Reply")
Method = Callable[..., Awaitable[Reply]]


def grpc_edge(method: Method[Reply]) -> Method[Reply]:
    """Turn domain and storage errors raised by a servicer method into rich gRPC statuses."""

    @functools.wraps(method)
    async def wrapper(
        self: Any, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Reply:
        try:
            return await method(self, request, context)
        except (LeasqError, RedisConnectionError, RedisTimeoutError, ConnectionError,
                ResponseError) as error:  # fmt: skip
            known = domain_error(error)
            if known is not None:
                await _abort(context, known)
            log.exception("redis refused a command")
            await context.abort(grpc.StatusCode.INTERNAL, f"storage error: {error}")
        raise AssertionError("unreachable")

    return wrapper


async def _abort(context: grpc.aio.ServicerContext[Any, Any], error: LeasqError) -> NoReturn:
    await context.abort_with_status(to_rich_status(error))
    raise AssertionError("abort returned")


__all__ = ["domain_error", "grpc_edge", "item_error", "status_code", "to_rich_status"]
