"""Retries and waiting: which calls survive a broker restart or a storage outage, and how."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from broker_process import BrokerFactory, BrokerHandle, RedisProcess

from leasq_sdk import AsyncClient, Client, StorageUnavailable, TaskRequest

DEADLINE = 3.0  # seconds given to a call that cannot succeed while Redis is down


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
    """Status codes of the calls of ``method`` in the broker's access log, in order; for
    ``Enqueue``, the EnqueueStream messages too (a client's lone enqueues go out as those).

    Stops the broker first: a call's access-log line is written after its answer is sent.
    """
    methods = (f"/{method}", "/EnqueueStream") if method == "Enqueue" else (f"/{method}",)
    broker.stop()
    codes = []
    for line in broker.log_text().splitlines():
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        if entry.get("event") == "rpc" and entry.get("method", "").endswith(methods):
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


def test_an_enqueue_with_a_task_id_is_retried_until_its_deadline_while_redis_is_down(
    broker_factory: BrokerFactory, own_redis: RedisProcess
) -> None:
    broker = broker_factory(redis_url=own_redis.url, log_level="debug")
    with Client(broker.address, timeout=30) as client:
        client.enqueue("warm-up", b"", task_id="warm-up")
        own_redis.stop()
        started = time.monotonic()
        with pytest.raises(StorageUnavailable):
            client.enqueue("x", b"", task_id="retried", rpc_timeout=DEADLINE)
        elapsed = time.monotonic() - started
    attempts = _attempts(broker, "Enqueue")
    # gRPC's own policy gave up after 5 attempts in about 1.5 s, whatever the deadline.
    assert attempts[0] == "OK" and set(attempts[1:]) == {"UNAVAILABLE"}
    assert len(attempts[1:]) > 5
    assert DEADLINE - 1.5 < elapsed <= DEADLINE + 0.5


async def test_an_async_enqueue_with_a_task_id_is_retried_until_its_deadline_while_redis_is_down(
    broker_factory: BrokerFactory, own_redis: RedisProcess
) -> None:
    broker = broker_factory(redis_url=own_redis.url, log_level="debug")
    async with AsyncClient(broker.address, timeout=30) as client:
        await client.enqueue("warm-up", b"", task_id="warm-up")
        own_redis.stop()
        started = time.monotonic()
        with pytest.raises(StorageUnavailable):
            await client.enqueue("x", b"", task_id="retried", rpc_timeout=DEADLINE)
        elapsed = time.monotonic() - started
    attempts = await asyncio.to_thread(_attempts, broker, "Enqueue")
    assert attempts[0] == "OK" and set(attempts[1:]) == {"UNAVAILABLE"}
    assert len(attempts[1:]) > 5
    assert DEADLINE - 1.5 < elapsed <= DEADLINE + 0.5


def test_an_enqueue_without_a_task_id_is_never_retried(
    broker_factory: BrokerFactory, own_redis: RedisProcess
) -> None:
    broker = broker_factory(redis_url=own_redis.url, log_level="debug")
    with Client(broker.address, timeout=5) as client:
        client.enqueue("warm-up", b"")
        own_redis.stop()
        with pytest.raises(StorageUnavailable):
            client.enqueue("x", b"")
        results = client.enqueue_many([TaskRequest("y", b""), TaskRequest("z", b"", task_id="z")])
    assert _attempts(broker, "Enqueue") == ["OK", "UNAVAILABLE"]
    assert _attempts(broker, "EnqueueBatch") == ["UNAVAILABLE"]
    assert all(isinstance(r, StorageUnavailable) for r in results)


async def test_an_async_enqueue_without_a_task_id_is_never_retried(
    broker_factory: BrokerFactory, own_redis: RedisProcess
) -> None:
    broker = broker_factory(redis_url=own_redis.url, log_level="debug")
    async with AsyncClient(broker.address, timeout=5) as client:
        await client.enqueue("warm-up", b"")
        own_redis.stop()
        with pytest.raises(StorageUnavailable):
            await client.enqueue("x", b"")
        results = await client.enqueue_many(
            [TaskRequest("y", b""), TaskRequest("z", b"", task_id="z")]
        )
    assert await asyncio.to_thread(_attempts, broker, "Enqueue") == ["OK", "UNAVAILABLE"]
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


# How long the broker stays down in the restart tests: long enough for a reconnect backoff
# that grows to 5 s (the old one) to have passed 2 s between attempts.
OUTAGE = 4.0


def test_a_waiting_call_reaches_a_restarted_broker_within_about_a_second(
    broker: BrokerHandle,
) -> None:
    with Client(broker.address, timeout=30) as client:
        client.list_queues()
        broker.stop()
        with ThreadPoolExecutor(max_workers=1) as pool:
            waiting = pool.submit(client.queue_stats, "default")  # waits for the broker
            threading.Event().wait(OUTAGE)  # the outage itself, not a synchronisation
            broker.start()
            back = time.monotonic()
            waiting.result(timeout=30)
            reached = time.monotonic() - back
    # At most 0.8 s (+20% jitter) between connection attempts, plus the call itself.
    assert reached < 2.0
