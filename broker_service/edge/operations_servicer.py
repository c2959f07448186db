"""The history, bulk, search, queue-deletion and server-info calls of InspectService (mixed
into its servicer)."""

from __future__ import annotations

from leasq_broker.operations.service import Operations


class OperationsMethods:
    """GetQueueHistory, RunAllTasks, ArchiveAllTasks, DeleteAllTasks, SearchTasks, DeleteQueue,
    GetServerInfo."""

    _operations: Operations
