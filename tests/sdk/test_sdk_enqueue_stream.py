"""The clients' enqueue stream: lone enqueues go out as EnqueueStream messages, with the
outcomes a unary Enqueue gives, and fall back to unary calls where a stream cannot carry them.

What reached the broker is read from its /metrics endpoint (``leasq_rpc_requests_total`` per
call, ``leasq_rpc_stream_messages_total`` per streamed task), not from what the client says.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from broker_process import BrokerFactory, BrokerHandle, stable_port
from observability.scraping import scrape
from waiting import SETTLE, eventually

import leasq_sdk.enqueue_stream
import leasq_sdk.message_stream_aio
from leasq_broker.edge.tokens import hash_token
from leasq_sdk import AsyncClient, Client, DuplicateTask, InvalidTask, TaskIdConflict


@dataclass(frozen=True)
class Served:
    """A broker with its /metrics URL."""

    broker: BrokerHandle
    metrics_url: str
    metrics_token: str | None = None

    async def count(self, name: str, method: str, code: str | None = None) -> float:
        scraped = await scrape(self.metrics_url, self.metrics_token)
        assert scraped.status == 200
        return sum(s.value for s in scraped.samples
                   if s.name == name and s.labels.get("method") == method
                   and (code is None or s.labels.get("code") == code))  # fmt: skip

    async def streamed(self) -> float:
        return await self.count("leasq_rpc_stream_messages_total", "EnqueueStream")

    async def unary(self) -> float:
        return await self.count("leasq_rpc_requests_total", "Enqueue")


def _served(broker_factory: BrokerFactory, metrics_token: str | None = None,
            **flags: object) -> Served:  # fmt: skip
    port = stable_port()
    broker = broker_factory(http_listen=f"127.0.0.1:{port}", **flags)
    return Served(broker, f"http://127.0.0.1:{port}/metrics", metrics_token)


@pytest.fixture
def served(broker_factory: BrokerFactory) -> Served:
    return _served(broker_factory)


async def test_lone_enqueues_of_both_clients_go_out_on_one_stream_each(served: Served) -> None:
    async with AsyncClient(served.broker.address) as client:
        ids = [(await client.enqueue("stream:a", queue="streamed")).id for _ in range(5)]
    with Client(served.broker.address) as sync_client:
        ids += [sync_client.enqueue("stream:s", queue="streamed").id for _ in range(5)]
        assert sync_client.queue_stats("streamed").pending == 10
    assert len(set(ids)) == 10
    assert await served.streamed() == 10
    assert await served.unary() == 0
    # Each client opened one stream and closed it with the client.
    assert await served.count("leasq_rpc_requests_total", "EnqueueStream") == 2


async def test_a_streamed_enqueue_raises_what_a_unary_one_would(served: Served) -> None:
    async with AsyncClient(served.broker.address) as client:
        await client.enqueue("stream:x", task_id="twice", queue="streamed")
        with pytest.raises(TaskIdConflict):
            await client.enqueue("stream:x", task_id="twice", queue="streamed")
        await client.enqueue("stream:u", unique=60, queue="streamed")
        with pytest.raises(DuplicateTask):
            await client.enqueue("stream:u", unique=60, queue="streamed")
        with pytest.raises(InvalidTask) as bad:
            await client.enqueue("stream:x", queue="no spaces")
        assert bad.value.field == "task.queue"
    with Client(served.broker.address) as sync_client:
        with pytest.raises(TaskIdConflict):
            sync_client.enqueue("stream:x", task_id="twice", queue="streamed")
        with pytest.raises(InvalidTask):
            sync_client.enqueue("stream:x", queue="no spaces")
    assert await served.streamed() == 7
    assert await served.unary() == 0


async def test_with_the_stream_off_every_lone_enqueue_is_a_unary_call(served: Served) -> None:
    async with AsyncClient(served.broker.address, enqueue_stream=False) as client:
        await client.enqueue("stream:off")
    with Client(served.broker.address, enqueue_stream=False) as sync_client:
        sync_client.enqueue("stream:off")
    assert (await served.unary(), await served.streamed()) == (2, 0)


@pytest.fixture
def limited(broker_factory: BrokerFactory, tmp_path: Path) -> tuple[Served, str]:
    """A broker whose only token may produce on queues ``mail-*`` (no stream for it)."""
    secret, reader = "tok-limited-producer", "tok-metrics-reader"
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(f'[[token]]\nname = "mail"\nsha256 = "{hash_token(secret)}"\n'
                      'role = "producer"\nqueues = ["mail-*"]\n\n'
                      f'[[token]]\nname = "metrics"\nsha256 = "{hash_token(reader)}"\n'
                      'role = "reader"\n')  # fmt: skip
    return _served(broker_factory, reader, auth_tokens_file=tokens), secret


async def test_a_token_that_may_not_stream_enqueues_by_unary_calls(
    limited: tuple[Served, str],
) -> None:
    served, secret = limited
    async with AsyncClient(served.broker.address, token=secret) as client:
        for _ in range(3):
            await client.enqueue("stream:limited", queue="mail-out")
    with Client(served.broker.address, token=secret) as sync_client:
        for _ in range(3):
            sync_client.enqueue("stream:limited", queue="mail-out")
    # One refused stream per client, then unary calls only (the refused task among them).
    assert await served.count("leasq_rpc_requests_total", "EnqueueStream",
                              "PERMISSION_DENIED") == 2  # fmt: skip
    assert await served.unary() == 6
    assert await served.streamed() == 0


async def test_after_a_broker_restart_the_next_enqueue_opens_a_new_stream(
    served: Served,
) -> None:
    async with AsyncClient(served.broker.address, timeout=30) as client:
        await client.enqueue("stream:before", queue="restarted")
        await served.broker.restart_async()
        after = await client.enqueue("stream:after", queue="restarted")  # no task_id
    with Client(served.broker.address, timeout=30) as sync_client:
        sync_client.enqueue("stream:before", queue="restarted")
        await served.broker.restart_async()
        sync_client.enqueue("stream:after", queue="restarted")
        assert sync_client.get_task("restarted", after.id).type == "stream:after"
        assert sync_client.queue_stats("restarted").pending == 4


@pytest.fixture
def short_lived_streams(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(leasq_sdk.message_stream_aio, "MAX_AGE", 0.0)
    monkeypatch.setattr(leasq_sdk.enqueue_stream, "MAX_AGE", 0.0)
    yield


async def test_a_stream_past_its_age_is_ended_cleanly_and_replaced(
    served: Served, short_lived_streams: None
) -> None:
    def ended_ok(count: int) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return await served.count("leasq_rpc_requests_total", "EnqueueStream", "OK") == count

        return check

    # A new stream per call. The broker ends each retired one OK once the client half-closed
    # it, answered in full; the client's close then cuts only its last, idle stream (which the
    # broker also counts OK: no call was in flight). Closing before a retired stream has ended
    # would cut that one too, so the test waits for the retired ones first.
    async with AsyncClient(served.broker.address) as client:
        for _ in range(3):
            await client.enqueue("stream:aged", queue="aged")
            await asyncio.sleep(0.01)
        stats = await client.queue_stats("aged")
        await eventually(ended_ok(2), SETTLE, "the retired streams never ended OK")
    with Client(served.broker.address) as sync_client:
        for _ in range(3):
            sync_client.enqueue("stream:aged", queue="aged")
        await eventually(ended_ok(5), SETTLE, "the sync client's retired streams never ended OK")
    assert stats.pending == 3
    assert await served.streamed() == 6
    await eventually(ended_ok(6), SETTLE, "the last streams never ended OK")
    assert await served.count("leasq_rpc_requests_total", "EnqueueStream") == 6
