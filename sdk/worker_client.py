"""Live-worker methods of :class:`Client` and :class:`AsyncClient` (mixed in).

All three calls are retried on UNAVAILABLE like the Inspect reads: listing is a read, and
quieting or stopping a worker twice is the same as once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from leasq.v1 import inspect_service_pb2 as pb
from leasq.v1 import inspect_service_pb2_grpc as pb_grpc
from leasq_sdk.workers import WorkerInfo, worker_info, worker_infos


class WorkerMethods:
    """Sync worker calls; the client provides ``_invoke`` and ``_inspect_stub``."""

    _invoke: Callable[..., Any]

    def _inspect_stub(self) -> pb_grpc.InspectServiceStub:
        raise NotImplementedError

    def list_workers(self, *, rpc_timeout: float | None = None) -> list[WorkerInfo]:
        """Every worker that called Lease or Heartbeat in the last 60 s, sorted by id, with
        the tasks each holds now."""
        response = self._invoke(self._inspect_stub().ListWorkers, pb.ListWorkersRequest(),
                                rpc_timeout)
        return worker_infos(response)

    def quiet_worker(self, worker_id: str, *, rpc_timeout: float | None = None) -> WorkerInfo:
        """Ask a worker to lease no more tasks and finish those it holds, staying up.
        :class:`WorkerNotFound` for a worker not seen in the last 60 s."""
        request = pb.QuietWorkerRequest(worker_id=worker_id)
        return worker_info(self._invoke(self._inspect_stub().QuietWorker, request,
                                        rpc_timeout).worker)

    def stop_worker(self, worker_id: str, *, rpc_timeout: float | None = None) -> WorkerInfo:
        """Ask a worker to lease no more tasks, finish those it holds and exit.
        :class:`WorkerNotFound` for a worker not seen in the last 60 s."""
        request = pb.StopWorkerRequest(worker_id=worker_id)
        return worker_info(self._invoke(self._inspect_stub().StopWorker, request,
                                        rpc_timeout).worker)


class AsyncWorkerMethods:
    """The same calls for the asyncio client, awaited."""

    _invoke: Callable[..., Awaitable[Any]]

    def _inspect_stub(self) -> pb_grpc.InspectServiceAsyncStub:
        raise NotImplementedError

    async def list_workers(self, *, rpc_timeout: float | None = None) -> list[WorkerInfo]:
        """See :meth:`Client.list_workers`."""
        response = await self._invoke(self._inspect_stub().ListWorkers,
                                      pb.ListWorkersRequest(), rpc_timeout)
        return worker_infos(response)

    async def quiet_worker(self, worker_id: str, *, rpc_timeout: float | None = None
                           ) -> WorkerInfo:
        """See :meth:`Client.quiet_worker`."""
        request = pb.QuietWorkerRequest(worker_id=worker_id)
        response = await self._invoke(self._inspect_stub().QuietWorker, request, rpc_timeout)
        return worker_info(response.worker)

    async def stop_worker(self, worker_id: str, *, rpc_timeout: float | None = None
                          ) -> WorkerInfo:
        """See :meth:`Client.stop_worker`."""
        request = pb.StopWorkerRequest(worker_id=worker_id)
        response = await self._invoke(self._inspect_stub().StopWorker, request, rpc_timeout)
        return worker_info(response.worker)
