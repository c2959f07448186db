"""``leasq worker`` against a broker that wants a token, or TLS with the system's roots.

A worker with the right token (``--token`` or ``LEASQ_TOKEN``) serves; one the broker refuses
(no token, a wrong one, a token whose role may not lease) stops with exit code 1 at once
instead of looping. ``--tls`` trusts the system roots (here: gRPC's default roots file, set by
``GRPC_DEFAULT_SSL_ROOTS_FILE_PATH``).
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio
from broker_process import BrokerFactory, BrokerHandle
from cli_worker import CliWorker
from tls_testing import Pki, ServerFiles
from worker_testing import Events

from leasq_broker.edge.tokens import hash_token
from leasq_sdk import AsyncClient

RUN = uuid.uuid4().hex[:8]
ADMIN, PRODUCER = f"admin-{RUN}", f"producer-{RUN}"
QUEUE = "cli-jobs"
REFUSAL_EXIT_WITHIN = 10.0  # connect, one Lease refused, shut down
SERVE_WITHIN = 10.0  # a worker's start and its first tasks


@pytest.fixture
def auth_broker(broker_factory: BrokerFactory, tmp_path: Path) -> BrokerHandle:
    """A broker whose admin token is ADMIN (``--auth-token``), with a producer-only token."""
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(f'[[token]]\nname = "api"\nsha256 = "{hash_token(PRODUCER)}"\n'
                      'role = "producer"\n')  # fmt: skip
    return broker_factory(auth_token=ADMIN, auth_tokens_file=tokens)


@pytest.fixture
async def events(signals_redis: str) -> AsyncIterator[Events]:
    client = redis.asyncio.Redis.from_url(signals_redis)
    try:
        yield Events(client, f"cli-security-events:{RUN}")
    finally:
        await client.aclose()


def _events_env(events: Events, redis_url: str) -> dict[str, str]:
    return {"WORKER_TEST_REDIS": redis_url, "WORKER_TEST_EVENTS": events.key,
            "WORKER_TEST_NAME": "A"}  # fmt: skip


async def _serves_then_stops(worker: CliWorker, events: Events, ids: list[str]) -> None:
    try:
        try:
            seen = await asyncio.wait_for(events.take(2 * len(ids), within=SERVE_WITHIN),
                                          SERVE_WITHIN + 1)  # fmt: skip
        except Exception as error:  # no event in time, however the wait reports it
            raise AssertionError(f"tasks not run within {SERVE_WITHIN}s ({error!r}); "
                                 f"worker log: {worker.logs}") from None  # fmt: skip
        done = [event for event in seen if event[0] == "done"]
        assert sorted(task_id for _, task_id, _, _ in done) == sorted(ids)
        worker.process.send_signal(signal.SIGTERM)
        assert await worker.exit_code(within=15) == 0
    finally:
        await worker.kill()


@pytest.mark.parametrize("how", ["--token", "LEASQ_TOKEN"])
async def test_a_worker_with_the_token_serves_a_broker_that_requires_one(
    auth_broker: BrokerHandle, events: Events, signals_redis: str, how: str
) -> None:
    async with AsyncClient(auth_broker.address, token=ADMIN) as client:
        ids = [(await client.enqueue("job", queue=QUEUE)).id for _ in range(2)]
    env = _events_env(events, signals_redis)
    args = ["--broker", auth_broker.address, "--queue", QUEUE]
    if how == "--token":
        args += ["--token", ADMIN]
    else:
        env["LEASQ_TOKEN"] = ADMIN
    worker = await CliWorker.start("worker_apps.events:registry", args, env=env)
    await _serves_then_stops(worker, events, ids)


@pytest.mark.parametrize(("token", "code"), [
    (None, "UNAUTHENTICATED"), (f"wrong-{RUN}", "UNAUTHENTICATED"),
    (PRODUCER, "PERMISSION_DENIED"),
], ids=["no token", "wrong token", "a producer's token"])  # fmt: skip
async def test_a_worker_the_broker_refuses_exits_with_1_at_once(
    auth_broker: BrokerHandle, token: str | None, code: str
) -> None:
    args = ["--broker", auth_broker.address, "--queue", QUEUE]
    worker = await CliWorker.start("worker_apps.events:registry",
                                   args + (["--token", token] if token else []))  # fmt: skip
    try:
        assert await worker.exit_code(within=REFUSAL_EXIT_WITHIN) == 1
    finally:
        await worker.kill()
    refused = [log for log in worker.logs if log.get("event") == "worker stopped by the broker's "
               "refusal"]  # fmt: skip
    assert [log.get("code") for log in refused] == [code], worker.logs
    assert all(token not in str(log) for log in worker.logs if token)


async def test_tls_with_the_system_roots_reaches_a_tls_broker(
    broker_factory: BrokerFactory, server_files: ServerFiles, pki: Pki, events: Events,
    signals_redis: str, tmp_path: Path,
) -> None:  # fmt: skip
    broker = broker_factory(**server_files.flags(mutual=False))
    async with AsyncClient(broker.address, root_certificates=pki.ca.pem) as client:
        ids = [(await client.enqueue("job", queue=QUEUE)).id for _ in range(2)]
    roots = tmp_path / "system-roots.pem"
    roots.write_bytes(pki.ca.pem)
    env = {**_events_env(events, signals_redis), "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": str(roots)}
    worker = await CliWorker.start("worker_apps.events:registry",
                                   ["--broker", broker.address, "--queue", QUEUE, "--tls"],
                                   env=env)  # fmt: skip
    await _serves_then_stops(worker, events, ids)
