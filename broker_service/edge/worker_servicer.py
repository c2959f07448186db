"""The worker calls of InspectService (mixed into its servicer)."""

from __future__ import annotations

from typing import Any

import grpc

from leasq.v1 import inspect_service_pb2 as pb
from leasq_broker.edge import worker_converters as wconv
from leasq_broker.edge.status import grpc_edge
from leasq_broker.workers.models import Command
from leasq_broker.workers.registry import WorkerRegistry

Context = grpc.aio.ServicerContext[Any, Any]


class WorkerInspectMethods:
    """ListWorkers, QuietWorker, StopWorker."""

    _workers: WorkerRegistry

    @grpc_edge
    async def ListWorkers(self, request: pb.ListWorkersRequest, context: Context
                          ) -> pb.ListWorkersResponse:
        records = await self._workers.list_workers()
        return pb.ListWorkersResponse(workers=[wconv.worker_info(r) for r in records])

    @grpc_edge
    async def QuietWorker(self, request: pb.QuietWorkerRequest, context: Context
                          ) -> pb.QuietWorkerResponse:
        record = await self._workers.give_command(wconv.worker_id(request.worker_id),
                                                  Command.QUIET)
        return pb.QuietWorkerResponse(worker=wconv.worker_info(record))

    @grpc_edge
    async def StopWorker(self, request: pb.StopWorkerRequest, context: Context
                         ) -> pb.StopWorkerResponse:
        record = await self._workers.give_command(wconv.worker_id(request.worker_id),
                                                  Command.STOP)
        return pb.StopWorkerResponse(worker=wconv.worker_info(record))
