"""Per-call deadlines (``rpc_timeout=``) are honoured by both clients, whatever the client's
default ``timeout=`` says: a call that cannot be answered ends near its own deadline.

Two targets that never answer: a broker frozen with SIGSTOP after the client connected (the
request is sent, no answer comes), and a listener that accepts TCP connections and never speaks
HTTP/2 (the connection never becomes ready; calls wait for it). The client default is far longer
than the bound, so a call that ignored ``rpc_timeout`` would fail the bound; each call is given
the bound as its own limit, so such a regression fails in seconds, not at the client default.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from broker_process import BrokerHandle

from leasq_sdk import AsyncClient, Client, RpcTimeout, TaskRequest

RPC_TIMEOUT = 0.5
# Time beyond the deadline that a loaded 2-core machine may need to notice it and raise.
MARGIN = 1.0
BOUND = RPC_TIMEOUT + MARGIN
CLIENT_TIMEOUT = 30.0  # the client's default deadline: ignoring rpc_timeout means this
assert CLIENT_TIMEOUT > 10 * BOUND

# One call per channel and retry path: Enqueue without a task_id (the plain channel), with one
# (the retrying channel), a batch, and an Inspect read.
CALLS: dict[str, Callable[[Any], Any]] = {
    "enqueue": lambda c: c.enqueue("t", b"", rpc_timeout=RPC_TIMEOUT),
    "enqueue with a task id": lambda c: c.enqueue("t", b"", task_id="d-1",
                                                  rpc_timeout=RPC_TIMEOUT),
    "enqueue_many": lambda c: c.enqueue_many([TaskRequest("t", b"", task_id="d-2")],
                                             rpc_timeout=RPC_TIMEOUT),
    "queue_stats": lambda c: c.queue_stats("default", rpc_timeout=RPC_TIMEOUT),
}  # fmt: skip


@pytest.fixture
def silent_listener() -> Iterator[str]:
    """A loopback address that accepts TCP connections and never answers a byte."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield f"127.0.0.1:{server.getsockname()[1]}"


@pytest.fixture
def frozen_broker(broker: BrokerHandle) -> Iterator[Callable[[], None]]:
    """``freeze()`` stops the broker with SIGSTOP; it is continued at teardown."""
    assert broker.process is not None
    process = broker.process

    def freeze() -> None:
        process.send_signal(signal.SIGSTOP)

    try:
        yield freeze
    finally:
        process.send_signal(signal.SIGCONT)


def _check_outcome(name: str, outcome: Any, elapsed: float) -> None:
    if name == "enqueue_many":  # one result per task, never raised
        assert isinstance(outcome, list) and isinstance(outcome[0], RpcTimeout), outcome
    else:
        assert isinstance(outcome, RpcTimeout), f"{name}: {outcome!r}"
    assert RPC_TIMEOUT - 0.05 <= elapsed <= BOUND, f"{name} took {elapsed:.2f}s"


def _sync_calls(client: Client) -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        for name, call in CALLS.items():

            def timed(call: Callable[[Any], Any] = call) -> tuple[Any, float]:
                started = time.monotonic()
                try:
                    outcome = call(client)
                except RpcTimeout as error:
                    outcome = error
                return outcome, time.monotonic() - started

            future = pool.submit(timed)
            try:
                outcome, elapsed = future.result(timeout=BOUND + 1)
            except TimeoutError:
                client.close()  # cancels the call, so that the thread ends
                raise AssertionError(f"{name} still running after {BOUND + 1}s") from None
            _check_outcome(name, outcome, elapsed)


async def _async_calls(client: AsyncClient) -> None:
    for name, call in CALLS.items():
        started = time.monotonic()
        try:
            outcome = await asyncio.wait_for(call(client), BOUND + 1)
        except RpcTimeout as error:
            outcome = error
        except TimeoutError:
            raise AssertionError(f"{name} still running after {BOUND + 1}s") from None
        _check_outcome(name, outcome, time.monotonic() - started)


def test_the_sync_client_ends_calls_to_a_frozen_broker_at_their_own_deadline(
    broker: BrokerHandle, frozen_broker: Callable[[], None]
) -> None:
    with Client(broker.address, timeout=CLIENT_TIMEOUT) as client:
        client.list_queues()  # connected
        frozen_broker()
        _sync_calls(client)


async def test_the_async_client_ends_calls_to_a_frozen_broker_at_their_own_deadline(
    broker: BrokerHandle, frozen_broker: Callable[[], None]
) -> None:
    async with AsyncClient(broker.address, timeout=CLIENT_TIMEOUT) as client:
        await client.list_queues()  # connected
        frozen_broker()
        await _async_calls(client)


def test_the_sync_client_ends_calls_to_a_silent_address_at_their_own_deadline(
    silent_listener: str,
) -> None:
    with Client(silent_listener, timeout=CLIENT_TIMEOUT) as client:
        _sync_calls(client)


async def test_the_async_client_ends_calls_to_a_silent_address_at_their_own_deadline(
    silent_listener: str,
) -> None:
    async with AsyncClient(silent_listener, timeout=CLIENT_TIMEOUT) as client:
        await _async_calls(client)
