"""Property-based fuzzing of every RPC of the contract against one real broker.

Every method of every leasq.v1 service (found by walking the service descriptors, so a new RPC
is fuzzed without touching this file) gets requests generated from its message descriptor, most
of them nearly valid. Any answer must be deliberate: no INTERNAL or UNKNOWN, no hang, no broker
exit, no traceback or error line in the broker's log. Random bodies and unknown methods get the
same scrutiny, and tasks enqueued before the fuzzing, in a queue the fuzzer never names, must
all still be there at the end.

The number of examples per RPC is set for CI (about a minute for the whole module, the same
examples every run); ``LEASQ_FUZZ_EXAMPLES=2000`` runs longer, with fresh random examples.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from fuzz.fuzz_harness import (
    CALL_TIMEOUT,
    WAITING_CALL_TIMEOUT,
    FuzzBroker,
    Outcome,
    contract_methods,
    method_path,
    verdict,
    wait_seconds,
)
from fuzz.fuzz_hints import HINTS, SENTINEL_QUEUE
from fuzz.proto_strategies import messages
from google.protobuf import text_format
from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import inspect_service_pb2 as ipb
from leasq.v1 import task_pb2

_BY_HAND = os.environ.get("LEASQ_FUZZ_EXAMPLES")
FUZZ = settings(
    max_examples=int(_BY_HAND or 250),
    deadline=None,
    derandomize=_BY_HAND is None,
    database=None,
    print_blob=False,
    suppress_health_check=list(HealthCheck),
)
METHODS = contract_methods()
LEASE_QUEUE = "fz-leases"  # real leases lent to Heartbeat, Ack and Nack requests
SENTINELS = 40
SCHEDULED_SENTINELS = 5


@pytest.fixture(scope="module")
def fuzz_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzBroker]:
    broker = FuzzBroker(tmp_path_factory.mktemp("fuzz-broker"))
    try:
        _enqueue_sentinels(broker)
        yield broker
    finally:
        broker.close()


def _enqueue_sentinels(broker: FuzzBroker) -> None:
    stub = _broker_stub(broker)
    specs = [task_pb2.TaskSpec(queue=SENTINEL_QUEUE, type="sentinel", task_id=f"s-{i}",
                               payload=b"sentinel %d" % i) for i in range(SENTINELS)]  # fmt: skip
    specs += [task_pb2.TaskSpec(queue=SENTINEL_QUEUE, type="sentinel", task_id=f"later-{i}",
                                process_in=Duration(seconds=86_400))
              for i in range(SCHEDULED_SENTINELS)]  # fmt: skip
    answer = stub.EnqueueBatch(pb.EnqueueBatchRequest(tasks=specs), timeout=CALL_TIMEOUT)
    assert answer.enqueued_count == len(specs), answer


def _broker_stub(broker: FuzzBroker) -> Any:
    from leasq.v1 import broker_service_pb2_grpc

    return broker_service_pb2_grpc.BrokerServiceStub(broker.channel)


def _inspect_stub(broker: FuzzBroker) -> Any:
    from leasq.v1 import inspect_service_pb2_grpc

    return inspect_service_pb2_grpc.InspectServiceStub(broker.channel)


def _lease_refs(message: Message) -> Iterator[Any]:
    """Every LeaseRef inside ``message``, depth first."""
    for field, value in message.ListFields():
        if field.type != FieldDescriptor.TYPE_MESSAGE:
            continue
        values = value if field.is_repeated else [value]
        for item in values:
            if not isinstance(item, Message):
                break  # a map of scalars
            if item.DESCRIPTOR.full_name == "leasq.v1.LeaseRef":
                yield item
            yield from _lease_refs(item)


def _lend_real_leases(broker: FuzzBroker, request: Message, data: st.DataObject) -> None:
    """Make some LeaseRefs of the request name real, current leases (deep Ack/Nack paths)."""
    for ref in list(_lease_refs(request))[:3]:
        if not data.draw(st.booleans(), label="use a real lease"):
            continue
        stub = _broker_stub(broker)
        spec = task_pb2.TaskSpec(queue=LEASE_QUEUE, type="fz:job")
        stub.Enqueue(pb.EnqueueRequest(task=spec), timeout=CALL_TIMEOUT)
        leased = stub.Lease(
            pb.LeaseRequest(worker_id="w-1", queues=[pb.QueueWeight(queue=LEASE_QUEUE)],
                            lease_duration=Duration(seconds=5)),
            timeout=CALL_TIMEOUT,
        )  # fmt: skip
        for task in leased.tasks[:1]:
            ref.queue, ref.task_id, ref.lease_token = task.queue, task.id, task.lease_token


def _describe(request: Message) -> str:
    text = text_format.MessageToString(request, as_one_line=True)
    return text if len(text) < 600 else text[:600] + f"... ({request.ByteSize()} bytes)"


def _failures(broker: FuzzBroker, outcome: Outcome, wait: float, timeout: float) -> list[str]:
    problem = verdict(outcome, wait, timeout)
    return ([problem] if problem else []) + list(broker.problems())


@pytest.mark.parametrize("method", METHODS, ids=method_path)
def test_every_rpc_answers_generated_requests_deliberately_without_crash_hang_or_error_log(
    method: MethodDescriptor, fuzz_broker: FuzzBroker
) -> None:
    strategy = messages(method.input_type, HINTS)

    @FUZZ
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        request = data.draw(strategy, label="request")
        _lend_real_leases(fuzz_broker, request, data)
        wait = wait_seconds(request)
        timeout = WAITING_CALL_TIMEOUT if wait > 0 else CALL_TIMEOUT
        outcome = fuzz_broker.call(method, request, timeout)
        failures = _failures(fuzz_broker, outcome, wait, timeout)
        assert not failures, f"{method_path(method)} {_describe(request)}: {failures}"

    fuzz()


def _undecodable_bodies(method: MethodDescriptor) -> list[bytes]:
    """Bodies no protobuf parser accepts for this method's request type."""
    bodies = [b"\x0a\xff\xff\xff\xff\x0f", b"\x08", b"\x08\xff", b"\x07", b"\x00\x01", b"\xff" * 12]
    for field in method.input_type.fields:
        tag = field.number << 3 | 2
        if field.type == FieldDescriptor.TYPE_STRING:
            bodies.append(bytes([tag, 2, 0xC3, 0x28]))  # invalid UTF-8
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            bodies.append(bytes([tag, 3, 0x0A, 0x05, 0x41]))  # nested length past the end
    return bodies


@FUZZ
@given(
    method=st.sampled_from(METHODS),
    choice=st.integers(0, 1_000),
    random_body=st.binary(max_size=300),
    use_random=st.booleans(),
)
def test_random_and_undecodable_request_bodies_are_refused_deliberately(
    fuzz_broker: FuzzBroker, method: MethodDescriptor, choice: int, random_body: bytes,
    use_random: bool,
) -> None:  # fmt: skip
    crafted = _undecodable_bodies(method)
    body = random_body if use_random else crafted[choice % len(crafted)]
    outcome = fuzz_broker.call_raw(method_path(method), body)
    failures = _failures(fuzz_broker, outcome, 0.0, CALL_TIMEOUT)
    assert not failures, f"{method_path(method)} body {body!r}: {failures}"


UNKNOWN_PATHS = (
    "/leasq.v1.BrokerService/NoSuchMethod",
    "/leasq.v1.NoSuchService/Enqueue",
    "/leasq.v2.BrokerService/Enqueue",
    "/leasq.v1.InspectService/enqueue",
    "/grpc.health.v1.Health/NoSuchMethod",
    "/x/y",
)


@pytest.mark.parametrize("path", UNKNOWN_PATHS)
def test_unknown_methods_and_services_are_unimplemented(fuzz_broker: FuzzBroker, path: str) -> None:
    for body in (b"", b"\x0a\x03abc", b"\xff\xff"):
        outcome = fuzz_broker.call_raw(path, body)
        assert outcome.code == grpc.StatusCode.UNIMPLEMENTED, (path, body, outcome)
    assert not list(fuzz_broker.problems())


def test_tasks_enqueued_before_the_fuzzing_are_all_still_there_and_intact(
    fuzz_broker: FuzzBroker,
) -> None:
    """Runs last in this module: the fuzzing above never named the sentinel queue."""
    inspect, broker = _inspect_stub(fuzz_broker), _broker_stub(fuzz_broker)
    for i in range(SCHEDULED_SENTINELS):
        info = inspect.GetTask(ipb.GetTaskRequest(queue=SENTINEL_QUEUE, task_id=f"later-{i}"),
                               timeout=CALL_TIMEOUT).task  # fmt: skip
        assert info.state == task_pb2.TASK_STATE_SCHEDULED
    leased = broker.Lease(
        pb.LeaseRequest(worker_id="sentinel-check", queues=[pb.QueueWeight(queue=SENTINEL_QUEUE)],
                        max_tasks=SENTINELS + 10, lease_duration=Duration(seconds=60)),
        timeout=CALL_TIMEOUT,
    )  # fmt: skip
    assert {(t.id, t.payload) for t in leased.tasks} == {
        (f"s-{i}", b"sentinel %d" % i) for i in range(SENTINELS)
    }
    items = [pb.AckItem(lease=pb.LeaseRef(queue=t.queue, task_id=t.id, lease_token=t.lease_token))
             for t in leased.tasks]  # fmt: skip
    acked = broker.Ack(pb.AckRequest(worker_id="sentinel-check", items=items),
                       timeout=CALL_TIMEOUT)  # fmt: skip
    assert not [result for result in acked.results if result.HasField("error")]
    stats = inspect.GetQueueStats(ipb.GetQueueStatsRequest(queue=SENTINEL_QUEUE),
                                  timeout=CALL_TIMEOUT).stats  # fmt: skip
    assert (stats.pending, stats.active, stats.scheduled) == (0, 0, SCHEDULED_SENTINELS)
    assert not list(fuzz_broker.problems())
