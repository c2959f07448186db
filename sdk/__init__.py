"""Leasq producer SDK: enqueue tasks and inspect queues over gRPC.

Depends only on grpcio, protobuf, grpcio-status, googleapis-common-protos and the generated
``leasq.v1`` code.
"""

from leasq_sdk.aio import AsyncClient
from leasq_sdk.batch import MAX_BATCH, EnqueueResult
from leasq_sdk.client import Client
from leasq_sdk.errors import (
    AlreadyExists,
    BatchTooLarge,
    BrokerUnavailable,
    DuplicateTask,
    FailedPrecondition,
    HeadersTooLarge,
    InvalidArgument,
    InvalidTask,
    LeaseLost,
    LeasqError,
    PayloadTooLarge,
    PermissionDenied,
    ResourceExhausted,
    RpcTimeout,
    QueueNotFound,
    ScheduleNotFound,
    StorageUnavailable,
    TaskIdConflict,
    TaskNotFound,
    Unauthenticated,
    WrongState,
    from_item_error,
    from_rpc_error,
)
from leasq_sdk.models import EnqueuedTask, QueueInfo, QueueStats, TaskInfo, TaskPage, TaskState
from leasq_sdk.options import TaskOptions, TaskRequest
from leasq_sdk.schedules import (
    CatchUp,
    FireStatus,
    Overlap,
    Schedule,
    ScheduleFire,
    ScheduleInfo,
)
from leasq_sdk.taskdef import PayloadError, TaskDef

__all__ = [
    "MAX_BATCH",
    "AlreadyExists",
    "AsyncClient",
    "BatchTooLarge",
    "BrokerUnavailable",
    "CatchUp",
    "Client",
    "DuplicateTask",
    "EnqueueResult",
    "EnqueuedTask",
    "FailedPrecondition",
    "FireStatus",
    "HeadersTooLarge",
    "InvalidArgument",
    "InvalidTask",
    "LeaseLost",
    "LeasqError",
    "Overlap",
    "PayloadError",
    "PayloadTooLarge",
    "PermissionDenied",
    "QueueInfo",
    "QueueStats",
    "ResourceExhausted",
    "RpcTimeout",
    "Schedule",
    "ScheduleFire",
    "ScheduleInfo",
    "QueueNotFound",
    "ScheduleNotFound",
    "StorageUnavailable",
    "TaskDef",
    "TaskIdConflict",
    "TaskInfo",
    "TaskNotFound",
    "TaskOptions",
    "TaskPage",
    "TaskRequest",
    "TaskState",
    "Unauthenticated",
    "WrongState",
    "from_item_error",
    "from_rpc_error",
]
