"""ListWorkers, QuietWorker and StopWorker against raw gRPC clients: what the broker records
from Lease and Heartbeat calls, when it forgets a worker, and how a command changes the
answers of Lease (no tasks, at once, even a waiting long poll), Heartbeat (leases still
extended) and an Ack's lease_next."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2, timestamp_pb2
from waiting import MARGIN, eventually, within

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc, inspect_service_pb2_grpc, task_pb2
from leasq.v1 import inspect_service_pb2 as ipb


def _worker_id() -> str:
    return f"raw-{uuid.uuid4().hex[:8]}"


async def _enqueue(stub: Any, queue: str, task_type: str = "job") -> str:
    response = await stub.Enqueue(pb.EnqueueRequest(task=task_pb2.TaskSpec(type=task_type,
                                                                          queue=queue)))
    return str(response.task.id)


def _lease(worker_id: str, queue: str, *, wait: float = 0, max_tasks: int = 1,
           meta: pb.WorkerMeta | None = None) -> pb.LeaseRequest:
    return pb.LeaseRequest(worker_id=worker_id, queues=[pb.QueueWeight(queue=queue, weight=3)],
                           max_tasks=max_tasks, wait=duration_pb2.Duration(seconds=int(wait)),
                           worker=meta)


async def _workers(inspect: Any) -> dict[str, ipb.WorkerInfo]:
    response = await inspect.ListWorkers(ipb.ListWorkersRequest())
    ids = [w.worker_id for w in response.workers]
    assert ids == sorted(ids), "ListWorkers must sort by worker id"
    return {w.worker_id: w for w in response.workers}


def _meta(pid: int, started_s: int = 1_700_000_000) -> pb.WorkerMeta:
    return pb.WorkerMeta(host="box-1", pid=pid, concurrency=4, sdk="test/1",
                         started_at=timestamp_pb2.Timestamp(seconds=started_s))


async def test_a_client_sending_no_meta_is_listed_with_its_queues_and_held_task(
    stubs: tuple[Any, Any], queue: str
) -> None:
    broker, inspect = stubs
    worker = _worker_id()
    task_id = await _enqueue(broker, queue, "resize")
    before_ms = int(time.time() * 1000)
    leased = await broker.Lease(_lease(worker, queue))
    assert [t.id for t in leased.tasks] == [task_id]
    assert leased.command == pb.WORKER_COMMAND_UNSPECIFIED

    info = (await _workers(inspect))[worker]
    assert info.meta == pb.WorkerMeta()  # it sent none
    assert [(q.queue, q.weight) for q in info.queues] == [(queue, 3)]
    assert not info.strict
    assert info.command == pb.WORKER_COMMAND_UNSPECIFIED
    assert info.first_seen_at.ToMilliseconds() >= before_ms - 50
    assert info.last_seen_at.ToMilliseconds() >= info.first_seen_at.ToMilliseconds()
    [held] = info.tasks
    assert (held.queue, held.task_id, held.type) == (queue, task_id, "resize")
    assert before_ms - 50 <= held.leased_at.ToMilliseconds() <= int(time.time() * 1000) + 50
    assert held.lease_expires_at == leased.tasks[0].lease_expires_at
    assert (held.lease_expires_at.ToMilliseconds() - held.leased_at.ToMilliseconds()
            == 15_000), "the default lease is 15 s, counted from the grant"


async def test_meta_and_strict_flag_are_recorded_as_sent(stubs: tuple[Any, Any], queue: str
                                                         ) -> None:  # fmt: skip
    broker, inspect = stubs
    worker = _worker_id()
    request = _lease(worker, queue, meta=_meta(pid=4242))
    request.strict = True
    await broker.Lease(request)
    info = (await _workers(inspect))[worker]
    assert info.meta == _meta(pid=4242)
    assert info.strict
    assert list(info.tasks) == []


async def test_a_worker_stays_listed_while_it_calls_and_disappears_a_ttl_after_its_last_call(
    stubs: tuple[Any, Any], queue: str, worker_ttl: float
) -> None:
    broker, inspect = stubs
    worker = _worker_id()
    await broker.Lease(_lease(worker, queue))
    # Heartbeats (without leases) for twice the TTL keep it listed.
    keep_until = time.monotonic() + 2 * worker_ttl
    while time.monotonic() < keep_until:
        answer = await broker.Heartbeat(pb.HeartbeatRequest(worker_id=worker))
        assert answer.command == pb.WORKER_COMMAND_UNSPECIFIED
        assert worker in await _workers(inspect), "a worker that keeps calling was forgotten"
        await asyncio.sleep(0.2)  # pacing the heartbeats, not synchronisation
    stopped = time.monotonic()

    async def gone() -> bool:
        return worker not in await _workers(inspect)

    # Recorded at most once per second (a quarter of the TTL here), forgotten a TTL later.
    await eventually(gone, worker_ttl + 1 + MARGIN, "the silent worker left ListWorkers")
    assert time.monotonic() - stopped >= worker_ttl - 1.0, "forgotten before its TTL"
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await inspect.QuietWorker(ipb.QuietWorkerRequest(worker_id=worker))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND


async def test_quiet_answers_lease_at_once_with_no_tasks_and_heartbeats_still_extend(
    stubs: tuple[Any, Any], queue: str
) -> None:
    broker, inspect = stubs
    worker = _worker_id()
    held_id = await _enqueue(broker, queue)
    [held] = (await broker.Lease(_lease(worker, queue))).tasks
    pending_id = await _enqueue(broker, queue)

    answer = await inspect.QuietWorker(ipb.QuietWorkerRequest(worker_id=worker))
    assert answer.worker.worker_id == worker
    assert answer.worker.command == pb.WORKER_COMMAND_QUIET
    assert [t.task_id for t in answer.worker.tasks] == [held_id]

    started = time.monotonic()
    leased = await broker.Lease(_lease(worker, queue, wait=20, max_tasks=5))
    assert time.monotonic() - started < MARGIN, "a quiet worker's long poll must answer at once"
    assert (list(leased.tasks), leased.command) == ([], pb.WORKER_COMMAND_QUIET)

    ref = pb.LeaseRef(task_id=held.id, queue=queue, lease_token=held.lease_token)
    beat = await broker.Heartbeat(pb.HeartbeatRequest(
        worker_id=worker, leases=[ref], lease_duration=duration_pb2.Duration(seconds=100)))
    assert beat.command == pb.WORKER_COMMAND_QUIET
    [state] = beat.leases
    assert state.status == pb.LEASE_STATUS_EXTENDED
    assert state.lease_expires_at.ToMilliseconds() > held.lease_expires_at.ToMilliseconds()

    # Acking the held task with lease_next gets nothing either; the other task stays pending.
    acked = await broker.Ack(pb.AckRequest(worker_id=worker, items=[pb.AckItem(lease=ref)],
                                           lease_next=_lease(worker, queue, max_tasks=5)))
    assert list(acked.next_tasks) == []
    info = await inspect.GetTask(ipb.GetTaskRequest(queue=queue, task_id=pending_id))
    assert info.task.state == task_pb2.TASK_STATE_PENDING
    # Another worker still gets it.
    other = await broker.Lease(_lease(_worker_id(), queue))
    assert [t.id for t in other.tasks] == [pending_id]


async def test_a_waiting_long_poll_is_answered_promptly_when_its_worker_is_stopped(
    stubs: tuple[Any, Any], queue: str, redis_client: Any
) -> None:
    broker, inspect = stubs
    worker = _worker_id()
    await broker.Lease(_lease(worker, queue))  # registered
    polling = asyncio.ensure_future(broker.Lease(_lease(worker, queue, wait=30)))

    async def waiting() -> bool:
        return bool(await redis_client.exists(f"leasq:{{{queue}}}:waiting"))

    await eventually(waiting, 5, "the long poll waits in the broker")
    stopped = time.monotonic()
    answer = await inspect.StopWorker(ipb.StopWorkerRequest(worker_id=worker))
    assert answer.worker.command == pb.WORKER_COMMAND_STOP
    leased = await within(MARGIN, polling, "the stopped worker's long poll did not answer")
    assert time.monotonic() - stopped < MARGIN
    assert (list(leased.tasks), leased.command) == ([], pb.WORKER_COMMAND_STOP)


async def test_stop_upgrades_quiet_and_quiet_never_lowers_a_stop(stubs: tuple[Any, Any],
                                                                 queue: str) -> None:
    broker, inspect = stubs
    worker = _worker_id()
    await broker.Heartbeat(pb.HeartbeatRequest(worker_id=worker))
    quiet = await inspect.QuietWorker(ipb.QuietWorkerRequest(worker_id=worker))
    assert quiet.worker.command == pb.WORKER_COMMAND_QUIET
    stop = await inspect.StopWorker(ipb.StopWorkerRequest(worker_id=worker))
    assert stop.worker.command == pb.WORKER_COMMAND_STOP
    again = await inspect.QuietWorker(ipb.QuietWorkerRequest(worker_id=worker))
    assert again.worker.command == pb.WORKER_COMMAND_STOP
    beat = await broker.Heartbeat(pb.HeartbeatRequest(worker_id=worker))
    assert beat.command == pb.WORKER_COMMAND_STOP
    assert (await _workers(inspect))[worker].command == pb.WORKER_COMMAND_STOP


async def test_a_restart_under_the_same_id_starts_a_new_registration_without_the_command(
    stubs: tuple[Any, Any], queue: str
) -> None:
    broker, inspect = stubs
    worker = _worker_id()
    await broker.Lease(_lease(worker, queue, meta=_meta(pid=10)))
    first = (await _workers(inspect))[worker].first_seen_at.ToMilliseconds()
    await inspect.StopWorker(ipb.StopWorkerRequest(worker_id=worker))
    same = await broker.Lease(_lease(worker, queue, meta=_meta(pid=10)))
    assert same.command == pb.WORKER_COMMAND_STOP

    task_id = await _enqueue(broker, queue)
    new_process = _meta(pid=11, started_s=1_800_000_000)
    restarted = await broker.Lease(_lease(worker, queue, meta=new_process))
    assert restarted.command == pb.WORKER_COMMAND_UNSPECIFIED
    assert [t.id for t in restarted.tasks] == [task_id]
    info = (await _workers(inspect))[worker]
    assert (info.meta.pid, info.command) == (11, pb.WORKER_COMMAND_UNSPECIFIED)
    assert info.first_seen_at.ToMilliseconds() >= first


async def test_unknown_workers_are_not_found_and_bad_ids_or_meta_are_invalid(
    stubs: tuple[Any, Any], queue: str
) -> None:
    broker, inspect = stubs
    for call, request in ((inspect.QuietWorker, ipb.QuietWorkerRequest),
                          (inspect.StopWorker, ipb.StopWorkerRequest)):
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await call(request(worker_id="nobody-here"))
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        assert "nobody-here" in (missing.value.details() or "")
        for bad in ("", "tab\there", "x" * 300):
            with pytest.raises(grpc.aio.AioRpcError) as invalid:
                await call(request(worker_id=bad))
            assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "worker_id" in (invalid.value.details() or "")
    bad_meta = _lease(_worker_id(), queue, meta=pb.WorkerMeta(host="bad\nhost"))
    with pytest.raises(grpc.aio.AioRpcError) as invalid:
        await broker.Lease(bad_meta)
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "worker.host" in (invalid.value.details() or "")
    bad_beat = pb.HeartbeatRequest(worker_id=_worker_id(), worker=pb.WorkerMeta(sdk="s" * 200))
    with pytest.raises(grpc.aio.AioRpcError) as invalid:
        await broker.Heartbeat(bad_beat)
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "worker.sdk" in (invalid.value.details() or "")


async def test_a_command_given_through_one_replica_wakes_a_long_poll_on_another(
    broker_factory: Any, worker_ttl: float, queue: str, redis_client: Any
) -> None:
    first, second = broker_factory(worker_ttl=worker_ttl), broker_factory(worker_ttl=worker_ttl)
    worker = _worker_id()
    async with grpc.aio.insecure_channel(first.address) as a, \
            grpc.aio.insecure_channel(second.address) as b:
        on_b = broker_service_pb2_grpc.BrokerServiceStub(b)
        inspect_a = inspect_service_pb2_grpc.InspectServiceStub(a)
        await on_b.Lease(_lease(worker, queue))  # registered through replica B
        polling = asyncio.ensure_future(on_b.Lease(_lease(worker, queue, wait=30)))

        async def waiting() -> bool:
            return bool(await redis_client.exists(f"leasq:{{{queue}}}:waiting"))

        await eventually(waiting, 5, "the long poll waits in replica B")
        told = time.monotonic()
        answer = await inspect_a.QuietWorker(ipb.QuietWorkerRequest(worker_id=worker))
        assert answer.worker.command == pb.WORKER_COMMAND_QUIET
        leased = await within(MARGIN, polling, "replica B's long poll did not answer")
        assert time.monotonic() - told < MARGIN
        assert (list(leased.tasks), leased.command) == ([], pb.WORKER_COMMAND_QUIET)
        # And B's later answers carry it, with tasks waiting or not.
        await _enqueue(on_b, queue)
        again = await on_b.Lease(_lease(worker, queue))
        assert (list(again.tasks), again.command) == ([], pb.WORKER_COMMAND_QUIET)


async def test_a_command_lapses_with_the_registration_of_a_worker_silent_for_a_ttl(
    stubs: tuple[Any, Any], queue: str, worker_ttl: float
) -> None:
    broker, inspect = stubs
    worker = _worker_id()  # sends no meta: only the lapse can clear its command
    await broker.Lease(_lease(worker, queue))
    await inspect.StopWorker(ipb.StopWorkerRequest(worker_id=worker))
    assert (await broker.Lease(_lease(worker, queue))).command == pb.WORKER_COMMAND_STOP

    async def gone() -> bool:
        return worker not in await _workers(inspect)

    await eventually(gone, worker_ttl + 1 + MARGIN, "the silent worker left ListWorkers")
    task_id = await _enqueue(broker, queue)
    back = await broker.Lease(_lease(worker, queue))
    assert (back.command, [t.id for t in back.tasks]) == (pb.WORKER_COMMAND_UNSPECIFIED, [task_id])
    assert (await _workers(inspect))[worker].command == pb.WORKER_COMMAND_UNSPECIFIED
