"""Retries and waiting: which calls survive a broker restart or a storage outage, and how."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from broker_process import BrokerFactory, BrokerHandle, RedisProcess

from leasq_sdk import Client, StorageUnavailable, TaskRequest


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A Redis only this test uses, so that the test can stop it."""
    server = RedisProcess(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _attempts(broker: BrokerHandle, method: str) -> list[str]:
    """Status codes of the calls of ``method`` in the broker's access log, in order.

    Stops the broker first: a call's access-log line is written after its answer is sent.
    """
    broker.stop()
    codes = []
    for line in broker.log_text().splitlines():
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        if entry.get("event") == "rpc" and entry.get("method", "").endswith(f"/{method}"):
            codes.append(entry["code"])
    return codes


def test_an_enqueue_with_a_task_id_is_delivered_across_a_broker_restart(
    broker: BrokerHandle,
) -> None:
    with Client(broker.address, timeout=30) as client:
        client.list_queues()
        broker.stop()
        calling = threading.Event()

        def enqueue() -> str:
            calling.set()
            return client.enqueue("x", b"", task_id="across-restart").id

        with ThreadPoolExecutor(max_workers=1) as pool:
            future = pool.submit(enqueue)
            calling.wait()
            broker.restart()
            assert future.result(timeout=30) == "across-restart"
        assert client.get_task("default", "across-restart").type == "x"


def test_calls_sent_while_the_broker_restarts_wait_for_it_and_succeed(
    broker: BrokerHandle,
) -> None:
    with Client(broker.address, timeout=30) as client:
        client.list_queues()
        broker.stop()
        with ThreadPoolExecutor(max_workers=3) as pool:
            plain = pool.submit(client.enqueue, "x", b"plain")
            batch = pool.submit(client.enqueue_many, [TaskRequest("y", b"", task_id="b1")])
            stats = pool.submit(client.queue_stats, "default")
            broker.restart()
            assert plain.result(timeout=30).queue == "default"
            assert [r.id for r in batch.result(timeout=30)] == ["b1"]  # type: ignore[union-attr]
            assert stats.result(timeout=30).queue == "default"


def test_an_enqueue_with_a_task_id_is_retried_when_the_broker_answers_unavailable(
    broker_factory: BrokerFactory, own_redis: RedisProcess
) -> None:
    broker = broker_factory(redis_url=own_redis.url, log_level="debug")
    with Client(broker.address, timeout=30) as client:
        client.enqueue("warm-up", b"", task_id="warm-up")
        own_redis.stop()
        with pytest.raises(StorageUnavailable):
            client.enqueue("x", b"", task_id="retried")
    assert _attempts(broker, "Enqueue") == ["OK"] + ["UNAVAILABLE"] * 5


def test_an_enqueue_without_a_task_id_is_never_retried(
    broker_factory: BrokerFactory, own_redis: RedisProcess
) -> None:
    broker = broker_factory(redis_url=own_redis.url, log_level="debug")
    with Client(broker.address, timeout=30) as client:
        client.enqueue("warm-up", b"")
        own_redis.stop()
        with pytest.raises(StorageUnavailable):
            client.enqueue("x", b"")
        results = client.enqueue_many([TaskRequest("y", b""), TaskRequest("z", b"", task_id="z")])
    assert _attempts(broker, "Enqueue") == ["OK", "UNAVAILABLE"]
    assert _attempts(broker, "EnqueueBatch") == ["UNAVAILABLE"]
    assert all(isinstance(r, StorageUnavailable) for r in results)


def test_a_task_definition_call_honours_its_own_deadline(broker: BrokerHandle) -> None:
    from leasq_sdk import BrokerUnavailable, TaskDef

    ping = TaskDef("ping", queue="default")
    with Client(broker.address, timeout=30) as client:
        assert ping.enqueue(client, {"n": 1}, rpc_timeout=5).queue == "default"
        broker.stop()
        with pytest.raises(BrokerUnavailable):
            ping.enqueue(client, {"n": 2}, rpc_timeout=0.3)
