"""Every typed exception, raised by the broker case that should raise it."""

from __future__ import annotations

import pickle
from collections.abc import Iterator

import grpc
import pytest
from broker_process import BrokerFactory, BrokerHandle

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import broker_service_pb2_grpc, task_pb2
from leasq_sdk import (
    AlreadyExists,
    BrokerUnavailable,
    Client,
    DuplicateTask,
    HeadersTooLarge,
    InvalidArgument,
    InvalidTask,
    LeaseLost,
    LeasqError,
    PayloadTooLarge,
    RpcTimeout,
    StorageUnavailable,
    TaskIdConflict,
    TaskNotFound,
    Unauthenticated,
    WrongState,
    from_item_error,
    from_rpc_error,
)


@pytest.fixture
def client(broker: BrokerHandle) -> Iterator[Client]:
    with Client(broker.address, timeout=5) as client:
        yield client


def test_an_equal_unique_task_is_a_duplicate_task(client: Client) -> None:
    client.enqueue("report", {"day": 1}, unique=60)
    with pytest.raises(DuplicateTask) as caught:
        client.enqueue("report", {"day": 1}, unique=60)
    assert isinstance(caught.value, AlreadyExists)
    client.enqueue("report", {"day": 2}, unique=60)  # another payload is another task


def test_a_unique_key_makes_tasks_equal_whatever_their_payload(client: Client) -> None:
    client.enqueue("sync", b"a", unique=60, unique_key="account-7")
    with pytest.raises(DuplicateTask):
        client.enqueue("sync", b"b", unique=60, unique_key="account-7")


def test_a_second_task_with_the_same_id_is_a_task_id_conflict(client: Client) -> None:
    client.enqueue("x", b"", task_id="order-1")
    with pytest.raises(TaskIdConflict) as caught:
        client.enqueue("y", b"other", task_id="order-1")
    assert caught.value.code is grpc.StatusCode.ALREADY_EXISTS


def test_a_payload_over_the_broker_limit_is_payload_too_large(
    broker_factory: BrokerFactory,
) -> None:
    small = broker_factory(max_payload_bytes=100)
    with Client(small.address, timeout=5) as client:
        client.enqueue("fits", b"x" * 100)
        with pytest.raises(PayloadTooLarge) as caught:
            client.enqueue("big", b"x" * 101)
    assert caught.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert caught.value.reason == "PAYLOAD_TOO_LARGE"


def test_too_many_headers_are_headers_too_large(client: Client) -> None:
    with pytest.raises(HeadersTooLarge):
        client.enqueue("x", b"", headers={f"h{i}": "v" for i in range(65)})


def test_an_invalid_queue_name_is_an_invalid_task_naming_the_field(client: Client) -> None:
    with pytest.raises(InvalidTask) as caught:
        client.enqueue("x", b"", queue="no{braces}")
    assert caught.value.field == "task.queue"
    assert caught.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert "queue" in caught.value.details


def test_process_at_and_process_in_together_are_refused_by_the_broker(client: Client) -> None:
    from datetime import UTC, datetime, timedelta

    with pytest.raises(InvalidTask) as caught:
        client.enqueue("x", b"", process_at=datetime.now(UTC) + timedelta(hours=1), process_in=5)
    assert caught.value.field.startswith("task.process_")


def test_an_invalid_inspect_argument_is_an_invalid_argument_not_a_task(client: Client) -> None:
    with pytest.raises(InvalidArgument) as caught:
        client.queue_stats("bad queue!")
    assert not isinstance(caught.value, InvalidTask)
    assert caught.value.field.endswith("queue")


def test_an_unknown_task_is_task_not_found(client: Client) -> None:
    with pytest.raises(TaskNotFound) as caught:
        client.get_task("default", "nobody")
    assert caught.value.code is grpc.StatusCode.NOT_FOUND


def test_cancelling_a_task_that_is_not_active_is_wrong_state(client: Client) -> None:
    info = client.enqueue("x", b"")
    with pytest.raises(WrongState):
        client.cancel(info.queue, info.id)


def test_acking_with_a_stale_lease_token_is_lease_lost(
    client: Client, broker: BrokerHandle
) -> None:
    info = client.enqueue("x", b"")
    with grpc.insecure_channel(broker.address) as channel:
        stub = broker_service_pb2_grpc.BrokerServiceStub(channel)
        lease = stub.Lease(
            pb.LeaseRequest(worker_id="w1", queues=[pb.QueueWeight(queue="default")]), timeout=5
        )
        assert [t.id for t in lease.tasks] == [info.id]
        stale = pb.LeaseRef(queue="default", task_id=info.id, lease_token="not-the-token")
        with pytest.raises(grpc.RpcError) as caught:
            stub.Ack(pb.AckRequest(worker_id="w1", items=[pb.AckItem(lease=stale)]), timeout=5)
    error = from_rpc_error(caught.value)
    assert isinstance(error, LeaseLost)
    assert error.code is grpc.StatusCode.FAILED_PRECONDITION


def test_a_stopped_broker_is_broker_unavailable_within_the_deadline(
    broker: BrokerHandle,
) -> None:
    with Client(broker.address, timeout=0.5) as client:
        client.list_queues()
        broker.stop()
        with pytest.raises(BrokerUnavailable) as waited:
            client.enqueue("x", b"", task_id="t")
        assert isinstance(waited.value, RpcTimeout)
    with Client(broker.address, timeout=5, wait_for_ready=False) as client:
        with pytest.raises(BrokerUnavailable) as failed_fast:
            client.enqueue("x", b"")
    assert failed_fast.value.code is grpc.StatusCode.UNAVAILABLE


def test_a_missing_or_wrong_token_is_unauthenticated(broker_factory: BrokerFactory) -> None:
    guarded = broker_factory(auth_token="s3cret")
    for token in (None, "wrong"):
        with Client(guarded.address, token=token, timeout=5) as client:
            with pytest.raises(Unauthenticated) as caught:
                client.enqueue("x", b"")
            assert caught.value.reason == "UNAUTHENTICATED"
    with Client(guarded.address, token="s3cret", timeout=5) as client:
        info = client.enqueue("x", b"")
        assert client.get_task(info.queue, info.id).type == "x"


def test_a_batch_item_error_becomes_the_exception_for_its_reason() -> None:
    item = task_pb2.ItemError(code=6, reason="DUPLICATE_TASK", message="held by t1", field="")
    error = from_item_error(item)
    assert isinstance(error, DuplicateTask)
    assert (error.code, error.details) == (grpc.StatusCode.ALREADY_EXISTS, "held by t1")
    invalid = from_item_error(task_pb2.ItemError(code=3, reason="INVALID_FIELD", field="queue"))
    assert isinstance(invalid, InvalidTask) and invalid.field == "queue"
    unknown = from_item_error(task_pb2.ItemError(code=14, reason="STORAGE_UNAVAILABLE"))
    assert isinstance(unknown, StorageUnavailable) and isinstance(unknown, BrokerUnavailable)
    assert type(from_item_error(task_pb2.ItemError(code=13))) is LeasqError


def test_errors_survive_pickling_with_their_attributes() -> None:
    error = InvalidTask("bad", code=grpc.StatusCode.INVALID_ARGUMENT, reason="INVALID_FIELD",
                        field="task.queue", metadata={"queue": "q"})  # fmt: skip
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is InvalidTask
    assert (copy.details, copy.code, copy.reason, copy.field, copy.metadata) == (
        "bad", grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD", "task.queue", {"queue": "q"},
    )  # fmt: skip
