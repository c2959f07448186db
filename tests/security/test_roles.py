"""Roles and queue patterns of bearer tokens, on one broker with a tokens file.

The broker is shared by the module (it starts once); each test works on queues of its own.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import grpc
import grpc.aio
import pytest
from broker_process import BrokerHandle, broker_environment, overrides_to_flags
from google.protobuf.duration_pb2 import Duration
from process_checks import check_stopped
from rpc_testing import lease_request, ref, refusal, spec

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import (
    broker_service_pb2_grpc,
    inspect_service_pb2_grpc,
    schedule_service_pb2_grpc,
    task_pb2,
)
from leasq.v1 import inspect_service_pb2 as ipb
from leasq.v1 import schedule_service_pb2 as spb
from leasq_broker.edge.tokens import hash_token

RUN = uuid.uuid4().hex[:8]
# name: (role, queue patterns or None for every queue)
TOKENS: dict[str, tuple[str, list[str] | None]] = {
    "producer": ("producer", None),
    "worker": ("worker", None),
    "reader": ("reader", None),
    "admin": ("admin", None),
    "producer-email": ("producer", ["email-*"]),
    "worker-email": ("worker", ["email-*", "sms"]),
    "reader-email": ("reader", ["email-*"]),
    "admin-email": ("admin", ["email-*"]),
}
SECRETS = {name: f"tok-{name}-{RUN}" for name in TOKENS}
FLAG_TOKEN = f"flag-admin-{RUN}"
KEEP = Duration(seconds=600)


def tokens_toml(tokens: dict[str, tuple[str, list[str] | None]], secrets: dict[str, str]) -> str:
    """A tokens file holding the sha256 of each secret."""
    parts = []
    for name, (role, queues) in tokens.items():
        entry = f'[[token]]\nname = "{name}"\nsha256 = "{hash_token(secrets[name])}"\n'
        entry += f'role = "{role}"\n'
        if queues is not None:
            entry += "queues = [" + ", ".join(f'"{q}"' for q in queues) + "]\n"
        parts.append(entry)
    return "\n".join(parts)


@pytest.fixture(scope="module")
def broker(redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerHandle]:
    """A broker with the TOKENS file and ``--auth-token FLAG_TOKEN``, for the whole module."""
    workdir = tmp_path_factory.mktemp("roles-broker")
    tokens = workdir / "tokens.toml"
    tokens.write_text(tokens_toml(TOKENS, SECRETS))
    flags = overrides_to_flags({"redis_url": redis_server, "log_format": "json",
                                "auth_tokens_file": tokens, "auth_token": FLAG_TOKEN})  # fmt: skip
    handle = BrokerHandle(flags, workdir=workdir, redis_url=redis_server, data_dir=None,
                          env=broker_environment())  # fmt: skip
    handle.start()
    try:
        yield handle
    finally:
        handle.stop()
    check_stopped(handle)


class Stubs:
    """The three service stubs on one channel, with a token's metadata."""

    def __init__(self, channel: grpc.aio.Channel, secret: str) -> None:
        self.broker = broker_service_pb2_grpc.BrokerServiceStub(channel)
        self.inspect = inspect_service_pb2_grpc.InspectServiceStub(channel)
        self.schedules = schedule_service_pb2_grpc.ScheduleServiceStub(channel)
        self.kw: dict[str, Any] = {"metadata": [("authorization", f"Bearer {secret}")],
                                   "timeout": 5}  # fmt: skip


@pytest.fixture
async def as_token(broker: BrokerHandle) -> AsyncIterator[Callable[[str], Stubs]]:
    """``as_token(name)``: stubs that call with that token (FLAG_TOKEN for "flag")."""
    async with grpc.aio.insecure_channel(broker.address) as channel:
        yield lambda name: Stubs(channel, FLAG_TOKEN if name == "flag" else SECRETS[name])


@pytest.fixture
def email() -> str:
    return f"email-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def billing() -> str:
    return f"billing-{uuid.uuid4().hex[:8]}"


Call = Callable[[Stubs, str], Awaitable[Any]]


async def stream_one(stubs: Stubs, queue: str) -> pb.EnqueueStreamResponse:
    """One task on an EnqueueStream, and its answer (a refused stream raises). As the contract
    advises, the task is written once the broker took the stream (sent its headers)."""
    call = stubs.broker.EnqueueStream(metadata=stubs.kw["metadata"])
    await call.initial_metadata()
    if not call.done():
        await call.write(pb.EnqueueStreamRequest(id=1, task=spec(queue=queue)))
        await call.done_writing()
    answers = [answer async for answer in call]
    assert [a.id for a in answers] == [1] and not answers[0].HasField("error")
    return answers[0]


async def settle_one(stubs: Stubs, queue: str) -> pb.SettleStreamResponse:
    """One Ack on a SettleStream, of a task that does not exist, and its answer: the stream is
    let in, the message answered NOT_FOUND (a refused stream raises)."""
    call = stubs.broker.SettleStream(metadata=stubs.kw["metadata"])
    await call.initial_metadata()
    if not call.done():
        unknown = pb.LeaseRef(queue=queue, task_id="no-such-task", lease_token="t")
        await call.write(pb.SettleStreamRequest(id=1, ack=pb.AckRequest(
            worker_id="w1", items=[pb.AckItem(lease=unknown)])))
        await call.done_writing()
    answers = [answer async for answer in call]
    assert [a.id for a in answers] == [1]
    assert (answers[0].error.code, answers[0].error.reason) == (
        grpc.StatusCode.NOT_FOUND.value[0], "TASK_NOT_FOUND")
    return answers[0]


# Representative methods of each service: (needed role, call on a queue).
CALLS: dict[str, tuple[str, Call]] = {
    "Enqueue": ("producer", lambda s, q: s.broker.Enqueue(
        pb.EnqueueRequest(task=spec(queue=q)), **s.kw)),
    "EnqueueBatch": ("producer", lambda s, q: s.broker.EnqueueBatch(
        pb.EnqueueBatchRequest(tasks=[spec(queue=q)]), **s.kw)),
    "EnqueueStream": ("producer", stream_one),
    "Lease": ("worker", lambda s, q: s.broker.Lease(lease_request(q), **s.kw)),
    "SettleStream": ("worker", settle_one),
    "Heartbeat": ("worker", lambda s, q: s.broker.Heartbeat(
        pb.HeartbeatRequest(worker_id="w1"), **s.kw)),
    "GetQueueStats": ("reader", lambda s, q: s.inspect.GetQueueStats(
        ipb.GetQueueStatsRequest(queue=q), **s.kw)),
    "ListQueues": ("reader", lambda s, q: s.inspect.ListQueues(ipb.ListQueuesRequest(), **s.kw)),
    "ListSchedules": ("reader", lambda s, q: s.schedules.ListSchedules(
        spb.ListSchedulesRequest(), **s.kw)),
    "PauseQueue": ("admin", lambda s, q: s.inspect.PauseQueue(
        ipb.PauseQueueRequest(queue=q), **s.kw)),
    "UpsertSchedule": ("admin", lambda s, q: s.schedules.UpsertSchedule(
        spb.UpsertScheduleRequest(schedule=spb.Schedule(
            name=f"s-{q}", spec="0 3 * * *",
            template=spb.TaskTemplate(type="t:x", queue=q))), **s.kw)),
}  # fmt: skip


@pytest.mark.parametrize("method", CALLS)
@pytest.mark.parametrize("role", ["producer", "worker", "reader", "admin"])
async def test_each_role_may_call_the_methods_of_its_role_and_is_denied_the_others(
    as_token: Callable[[str], Stubs], email: str, role: str, method: str
) -> None:
    await as_token("admin").broker.Enqueue(pb.EnqueueRequest(task=spec(queue=email)),
                                           **as_token("admin").kw)  # the queue exists
    needed, call = CALLS[method]
    if role in (needed, "admin"):
        await call(as_token(role), email)
        return
    denied = await refusal(call(as_token(role), email))
    assert (denied.code, denied.reason) == (grpc.StatusCode.PERMISSION_DENIED,
                                            "PERMISSION_DENIED")  # fmt: skip
    assert f"needs role {needed}" in denied.message and f"'{role}'" in denied.message


async def test_the_auth_token_flag_means_admin(
    as_token: Callable[[str], Stubs], email: str
) -> None:
    flag = as_token("flag")
    await CALLS["Enqueue"][1](flag, email)
    await CALLS["Lease"][1](flag, email)
    await CALLS["PauseQueue"][1](flag, email)
    await CALLS["UpsertSchedule"][1](flag, email)


async def test_an_unknown_token_is_unauthenticated_not_denied(
    as_token: Callable[[str], Stubs], broker: BrokerHandle, email: str
) -> None:
    async with grpc.aio.insecure_channel(broker.address) as channel:
        stranger = Stubs(channel, f"tok-stranger-{RUN}")
        refused = await refusal(CALLS["ListQueues"][1](stranger, email))
    assert (refused.code, refused.reason) == (grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")


async def test_a_producer_limited_to_a_pattern_enqueues_only_into_matching_queues(
    as_token: Callable[[str], Stubs], email: str, billing: str
) -> None:
    producer = as_token("producer-email")
    await CALLS["Enqueue"][1](producer, email)
    denied = await refusal(CALLS["Enqueue"][1](producer, billing))
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED
    assert f"needs role producer on queue '{billing}'" in denied.message


async def test_a_batch_with_one_task_outside_the_pattern_is_denied_as_a_whole(
    as_token: Callable[[str], Stubs], email: str, billing: str
) -> None:
    admin = as_token("admin")
    await CALLS["Enqueue"][1](admin, email)
    batch = pb.EnqueueBatchRequest(tasks=[spec(queue=email), spec(queue=billing)])
    producer = as_token("producer-email")
    denied = await refusal(producer.broker.EnqueueBatch(batch, **producer.kw))
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED and billing in denied.message
    stats = await admin.inspect.GetQueueStats(ipb.GetQueueStatsRequest(queue=email), **admin.kw)
    assert stats.stats.pending == 1  # only the admin's task: the batch added nothing


async def test_a_lease_naming_one_queue_outside_the_pattern_is_denied(
    as_token: Callable[[str], Stubs], email: str, billing: str
) -> None:
    worker = as_token("worker-email")
    denied = await refusal(worker.broker.Lease(lease_request(email, "sms", billing), **worker.kw))
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED
    assert f"needs role worker on queue '{billing}'" in denied.message
    leased = await worker.broker.Lease(lease_request(email, "sms"), **worker.kw)
    assert list(leased.tasks) == []


async def test_an_ack_of_a_lease_in_a_queue_outside_the_pattern_is_denied_and_changes_nothing(
    as_token: Callable[[str], Stubs], billing: str
) -> None:
    admin, worker = as_token("admin"), as_token("worker")
    await CALLS["Enqueue"][1](admin, billing)
    (task,) = (await worker.broker.Lease(lease_request(billing), **worker.kw)).tasks
    ack = pb.AckRequest(worker_id="w1", items=[pb.AckItem(lease=ref(task))])

    limited = as_token("worker-email")
    denied = await refusal(limited.broker.Ack(ack, **limited.kw))
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED and billing in denied.message
    info = await admin.inspect.GetTask(ipb.GetTaskRequest(queue=billing, task_id=task.id),
                                       **admin.kw)  # fmt: skip
    assert info.task.state == task_pb2.TASK_STATE_ACTIVE
    await worker.broker.Ack(ack, **worker.kw)


async def test_an_ack_whose_lease_next_names_a_queue_outside_the_pattern_is_denied(
    as_token: Callable[[str], Stubs], email: str, billing: str
) -> None:
    admin, worker = as_token("admin"), as_token("worker-email")
    await CALLS["Enqueue"][1](admin, email)
    (task,) = (await worker.broker.Lease(lease_request(email), **worker.kw)).tasks
    ack = pb.AckRequest(worker_id="w1", items=[pb.AckItem(lease=ref(task))],
                        lease_next=lease_request(billing))  # fmt: skip
    denied = await refusal(worker.broker.Ack(ack, **worker.kw))
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED and billing in denied.message


async def test_a_reader_limited_to_a_pattern_reads_only_matching_queues_but_lists_all(
    as_token: Callable[[str], Stubs], email: str, billing: str
) -> None:
    admin, reader = as_token("admin"), as_token("reader-email")
    for queue in (email, billing):
        await CALLS["Enqueue"][1](admin, queue)
    await CALLS["GetQueueStats"][1](reader, email)
    denied = await refusal(CALLS["GetQueueStats"][1](reader, billing))
    assert f"needs role reader on queue '{billing}'" in denied.message
    await CALLS["ListQueues"][1](reader, email)  # names no queue: the role is enough


async def test_an_admin_limited_to_a_pattern_may_not_act_on_other_queues_or_on_schedules_by_name(
    as_token: Callable[[str], Stubs], email: str, billing: str
) -> None:
    await CALLS["Enqueue"][1](as_token("admin"), email)
    admin = as_token("admin-email")
    await CALLS["PauseQueue"][1](admin, email)
    denied = await refusal(CALLS["PauseQueue"][1](admin, billing))
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED
    trigger = admin.schedules.TriggerSchedule(spb.TriggerScheduleRequest(name="any"), **admin.kw)
    denied = await refusal(trigger)
    assert "needs role admin on every queue" in denied.message


def test_the_tokens_file_is_read_at_start(broker: BrokerHandle) -> None:
    assert '"tokens file loaded"' in broker.log_text()
    assert f'"tokens": {len(TOKENS)}' in broker.log_text()


async def test_a_token_limited_to_queue_patterns_may_not_open_an_enqueue_stream(
    as_token: Callable[[str], Stubs], email: str
) -> None:
    denied = await refusal(stream_one(as_token("producer-email"), email))
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED
    assert "every queue" in denied.message
    # The same token enqueues on its queues with unary calls, checked one by one.
    await as_token("producer-email").broker.Enqueue(pb.EnqueueRequest(task=spec(queue=email)),
                                                    **as_token("producer-email").kw)


async def test_a_token_limited_to_queue_patterns_may_not_open_a_settle_stream(
    as_token: Callable[[str], Stubs], email: str
) -> None:
    denied = await refusal(settle_one(as_token("worker-email"), email))
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED
    assert "every queue" in denied.message


async def test_a_worker_with_a_token_limited_to_queue_patterns_settles_with_unary_calls(
    broker: BrokerHandle, as_token: Callable[[str], Stubs], email: str
) -> None:
    from leasq_worker import Registry, Task, Worker

    admin = as_token("admin")
    registry = Registry()
    ran = asyncio.Event()

    @registry.handler("t:x")
    async def handle(task: Task) -> None:
        ran.set()

    await admin.broker.Enqueue(pb.EnqueueRequest(task=spec(queue=email, retention=KEEP)),
                               **admin.kw)  # fmt: skip
    worker = Worker(registry, broker=broker.address, queues=[email], token=SECRETS["worker-email"],
                    handle_signals=False, poll_wait=1)  # fmt: skip
    running = asyncio.create_task(worker.run())
    await asyncio.wait_for(ran.wait(), 15)
    worker.stop()
    await asyncio.wait_for(running, 30)  # run() returns once every outcome was reported
    # The broker refused the settle stream; the Ack went out unary and was let in.
    stats = await admin.inspect.GetQueueStats(ipb.GetQueueStatsRequest(queue=email), **admin.kw)
    assert (stats.stats.active, stats.stats.completed) == (0, 1)
