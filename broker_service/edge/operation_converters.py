"""Conversion between InspectService's operator messages and the operations' domain values."""

from __future__ import annotations

from leasq.v1 import inspect_service_pb2 as pb
from leasq_broker import validation as v
from leasq_broker.edge import converters as conv
from leasq_broker.operations.models import (
    QueueHistory,
    SearchCriteria,
    SearchResult,
    ServerState,
    TaskFilter,
)


def state(value: int) -> str:
    """The state's name; "" for UNSPECIFIED (the operation then names the allowed ones)."""
    return conv.STATE_NAMES.get(value, "") if value else ""


def task_filter(request: pb.RunAllTasksRequest | pb.ArchiveAllTasksRequest
                | pb.DeleteAllTasksRequest) -> TaskFilter:
    """The request's filter; older_than only when set."""
    f = request.filter
    older = None
    if f.HasField("older_than"):
        older = v.duration("filter.older_than", f.older_than.seconds, f.older_than.nanos)
    return TaskFilter(type=f.type, error_type=f.error_type, older_than_ms=older)


def history(result: QueueHistory) -> pb.GetQueueHistoryResponse:
    return pb.GetQueueHistoryResponse(
        days=[pb.DailyStats(date=d.date, processed=d.processed, failed=d.failed)
              for d in result.days],
        processed_total=result.processed_total, failed_total=result.failed_total,
    )


def criteria(request: pb.SearchTasksRequest) -> SearchCriteria:
    return SearchCriteria(id_prefix=request.id_prefix, type=request.type,
                          payload_contains=request.payload_contains,
                          error_type=request.error_type)


def search_page(result: SearchResult) -> pb.SearchTasksResponse:
    return pb.SearchTasksResponse(tasks=[conv.task_info(t) for t in result.tasks],
                                  next_page_token=result.next_page_token,
                                  examined=result.examined)


def server_info(state: ServerState) -> pb.GetServerInfoResponse:
    r = state.redis
    response = pb.GetServerInfoResponse(
        version=state.version,
        redis=pb.RedisInfo(
            version=r.version, mode=r.mode, used_memory_bytes=r.used_memory_bytes,
            max_memory_bytes=r.max_memory_bytes, connected_clients=r.connected_clients,
            aof_enabled=r.aof_enabled, aof_fsync=r.aof_fsync,
        ),
    )
    conv.set_ms(response.started_at, state.started_at_ms)
    response.redis.uptime.seconds = r.uptime_s
    return response
