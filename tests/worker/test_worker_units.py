"""The runtime's pure parts, without a broker: lookup, parsing, outcome mapping, slot arithmetic."""

from __future__ import annotations

import argparse
import os
import pickle
import socket
from typing import Any

import pytest
from google.protobuf import timestamp_pb2

from leasq.v1 import broker_service_pb2 as pb
from leasq.v1 import task_pb2
from leasq_sdk import PayloadError
from leasq_worker import CallNext, Registry, RetryAfter, SkipRetry, Task
from leasq_worker.attempt import _NoHandlerLog
from leasq_worker.cli import load_registry, parse_queue
from leasq_worker.errors import DeadlineExceeded, RemoteHandlerError, TaskTimeout
from leasq_worker.executor import encode_result
from leasq_worker.leases import HeldLease, Slots
from leasq_worker.middleware import build_chain
from leasq_worker.outcome import failure
from leasq_worker.registry import Mode
from leasq_worker.worker import default_worker_id, normalize_queues


def test_lookup_prefers_an_exact_match_then_the_longest_prefix() -> None:
    registry = Registry()
    for name in ("email:", "email:welcome", "email:welcome:v2", "image"):
        registry.add(name, lambda task: None)
    found = registry.lookup
    assert found("email:welcome").name == "email:welcome"  # type: ignore[union-attr]
    assert found("email:welcome:v2").name == "email:welcome:v2"  # type: ignore[union-attr]
    assert found("email:welcome:v3").name == "email:welcome"  # type: ignore[union-attr]
    assert found("email:digest").name == "email:"  # type: ignore[union-attr]
    assert found("image:resize").name == "image"  # type: ignore[union-attr]
    assert found("sms:welcome") is None


def test_a_type_cannot_be_registered_twice() -> None:
    registry = Registry()
    registry.add("a", lambda task: None)
    with pytest.raises(ValueError, match="already registered"):
        registry.add("a", lambda task: None)


def test_handlers_run_on_the_loop_in_threads_or_in_processes_by_kind() -> None:
    registry = Registry()

    @registry.handler("async")
    async def on_loop(task: Task) -> None: ...

    @registry.handler("sync")
    def in_thread(task: Task) -> None: ...

    @registry.handler("cpu", process=True)
    def in_process(task: Task) -> None: ...

    modes = {name: handler.mode for name, handler in registry.handlers.items()}
    assert modes == {"async": Mode.ASYNC, "sync": Mode.THREAD, "cpu": Mode.PROCESS}
    assert registry.uses_processes


async def test_middleware_chain_runs_the_first_registered_outermost() -> None:
    calls: list[str] = []

    def tagged(tag: str) -> Any:
        async def middleware(task: Task, call_next: CallNext) -> Any:
            calls.append(f"{tag}>")
            result = await call_next(task)
            calls.append(f"<{tag}")
            return f"{tag}({result})"

        return middleware

    async def handler(task: Task) -> str:
        calls.append("handler")
        return "x"

    chain = build_chain([tagged("a"), tagged("b")], handler)
    assert await chain(Task(task_pb2.LeasedTask(id="1"))) == "a(b(x))"
    assert calls == ["a>", "b>", "handler", "<b", "<a"]


def test_queue_flags_parse_into_names_and_weights() -> None:
    assert parse_queue("critical=6") == ("critical", 6)
    assert parse_queue("default") == ("default", 1)
    for bad in ("=3", "low=0", "low=x", "low=1001"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_queue(bad)


def test_queues_given_in_code_normalise_to_weighted_pairs() -> None:
    assert normalize_queues({"a": 6, "b": 1}) == [("a", 6), ("b", 1)]
    assert normalize_queues(["a", ("b", 3)]) == [("a", 1), ("b", 3)]
    with pytest.raises(ValueError):
        normalize_queues(["a", "a"])
    with pytest.raises(ValueError):
        normalize_queues([])


def test_a_registry_target_must_name_a_registry() -> None:
    assert isinstance(load_registry("worker_apps.events:registry"), Registry)
    with pytest.raises(TypeError):
        load_registry("worker_apps.events:NAME")
    with pytest.raises(ValueError):
        load_registry("worker_apps.events")


def test_results_are_stored_as_bytes_text_or_json() -> None:
    assert encode_result(None) == b""
    assert encode_result(b"\x00raw") == b"\x00raw"
    assert encode_result(bytearray(b"ba")) == b"ba"
    assert encode_result("héllo") == "héllo".encode()
    assert encode_result({"a": [1, 2]}) == b'{"a":[1,2]}'


@pytest.mark.parametrize(
    ("exc", "action", "error_type"),
    [
        (ValueError("boom"), pb.NACK_ACTION_RETRY, "ValueError"),
        (SkipRetry("no"), pb.NACK_ACTION_ARCHIVE, "SkipRetry"),
        (TaskTimeout("slow"), pb.NACK_ACTION_RETRY, "TaskTimeout"),
        (DeadlineExceeded("late"), pb.NACK_ACTION_ARCHIVE, "DeadlineExceeded"),
        (PayloadError("bad json"), pb.NACK_ACTION_ARCHIVE, "PayloadError"),
        (RemoteHandlerError("KeyError", "'k'"), pb.NACK_ACTION_RETRY, "KeyError"),
    ],
)
def test_exceptions_map_to_nack_actions(exc: Exception, action: int, error_type: str) -> None:
    outcome = failure(exc)
    assert (outcome.ack, outcome.action, outcome.error_type) == (False, action, error_type)
    assert outcome.error == str(exc)


def test_retry_after_carries_its_delay() -> None:
    outcome = failure(RetryAfter(2.5))
    assert (outcome.action, outcome.retry_after, outcome.error) == (
        pb.NACK_ACTION_RETRY, 2.5, "retry after 2.5s"
    )  # fmt: skip
    with pytest.raises(ValueError):
        RetryAfter(-1)


def test_slots_never_promise_more_than_the_concurrency() -> None:
    slots = Slots(5)
    assert slots.reserve() == 5 and slots.free == 0
    slots.unreserve(5)
    slots.held += 2  # two tasks came
    assert slots.reserve() == 3 and slots.reserve() == 0
    # A settle call may ask for the slots of the leases it settles, never for more.
    assert slots.reserve(transfer=2) == 2 and slots.free == 0
    slots.held -= 1  # the call settled one of the two; the other is held again
    slots.transferred(2)
    slots.unreserve(5)
    assert slots.free == 4
    slots.linger(1)  # a stopped sync handler's thread runs on: no task can use its slot
    assert slots.free == 3
    slots.held += 1  # the lease of that handler, about to be settled (e.g. a timeout)
    assert slots.free == 2
    assert slots.reserve(transfer=1) == 3  # settling it frees its lease's slot, not the thread
    slots.unreserve(3)
    slots.held -= 1
    slots.transferred(1)
    slots.linger(-1)
    assert slots.free == 4
    slots.close()
    assert slots.free == 0 and slots.reserve() == 0
    assert Slots(5000).reserve() == 1000  # one Lease asks for at most 1,000 tasks


def stamp(seconds: float) -> timestamp_pb2.Timestamp:
    value = timestamp_pb2.Timestamp()
    value.FromNanoseconds(int(seconds * 1e9))
    return value


def test_the_attempt_deadline_is_carried_over_as_a_span_from_the_lease() -> None:
    # Broker clock far from ours: only spans between the broker's own instants matter.
    leased = task_pb2.LeasedTask(
        id="t", queue="q", lease_token="k",
        lease_expires_at=stamp(1_000_015), attempt_deadline=stamp(1_000_040),
    )  # fmt: skip
    held = HeldLease(leased, Task(leased), sent_at=50.0, lease=15.0)
    assert held.expires == 65.0
    assert held.deadline == pytest.approx(90.0)
    no_deadline = task_pb2.LeasedTask(id="t", lease_expires_at=stamp(1_000_015))
    assert HeldLease(no_deadline, Task(no_deadline), 50.0, 15.0).deadline is None


def test_a_task_survives_pickling_for_the_process_pool_with_a_fresh_signal() -> None:
    task = Task(task_pb2.LeasedTask(id="t1", type="x", payload=b'{"a": 1}', retried=2))
    task.request_cancel("timeout")
    copy = pickle.loads(pickle.dumps(task))
    assert (copy.id, copy.type, copy.json(), copy.retry_count) == ("t1", "x", {"a": 1}, 2)
    assert not copy.cancelled and task.cancelled and task.cancel_reason == "timeout"


def test_a_worker_id_names_host_and_pid() -> None:
    host, pid, suffix = default_worker_id().rsplit(":", 2)
    assert (host, int(pid)) == (socket.gethostname(), os.getpid()) and suffix


class _Lines:
    """A log that keeps its warning lines."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def warning(self, event: str, **fields: Any) -> None:
        self.lines.append((event, fields))


def test_a_type_without_a_handler_is_logged_once_per_minute_with_a_count() -> None:
    log = _Lines()
    no_handler = _NoHandlerLog(log)
    for _ in range(3):
        no_handler.note("sms:welcome")
    no_handler.note("push:welcome")
    assert [fields["type"] for _, fields in log.lines] == ["sms:welcome", "push:welcome"]
    assert all(fields["released_since_last_line"] == 1 for _, fields in log.lines)
