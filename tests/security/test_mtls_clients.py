"""The SDK clients and a worker process on a broker that requires client certificates and tokens."""

from __future__ import annotations

import signal
import uuid
from pathlib import Path

import pytest
import redis.asyncio
from broker_process import BrokerFactory, BrokerHandle
from tls_testing import Pki, ServerFiles
from worker_testing import Events, WorkerProcess

from leasq_broker.edge.tokens import hash_token
from leasq_sdk import AsyncClient, Client
from leasq_sdk.errors import BrokerUnavailable, PermissionDenied

RUN = uuid.uuid4().hex[:8]
PRODUCER, WORKER, ADMIN = f"producer-{RUN}", f"worker-{RUN}", f"admin-{RUN}"
TOKENS = f"""
[[token]]
name = "mailer"
sha256 = "{hash_token(PRODUCER)}"
role = "producer"
queues = ["email*"]

[[token]]
name = "mail-worker"
sha256 = "{hash_token(WORKER)}"
role = "worker"

[[token]]
name = "ops"
sha256 = "{hash_token(ADMIN)}"
role = "admin"
"""


@pytest.fixture
def broker(
    broker_factory: BrokerFactory, server_files: ServerFiles, tmp_path: Path
) -> BrokerHandle:
    """A broker on mutual TLS with the TOKENS file."""
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(TOKENS)
    return broker_factory(auth_tokens_file=tokens, **server_files.flags(mutual=True))


@pytest.fixture
def cert_files(tmp_path: Path, pki: Pki) -> tuple[Path, Path, Path]:
    """The CA, client certificate and client key as files: (ca, cert, key)."""
    paths = tmp_path / "ca.pem", tmp_path / "client.pem", tmp_path / "client.key"
    for path, pem in zip(paths, (pki.ca.pem, pki.client.cert, pki.client.key), strict=True):
        path.write_bytes(pem)
    return paths


def test_the_sync_client_enqueues_over_mutual_tls_within_its_token_s_queues(
    broker: BrokerHandle, pki: Pki
) -> None:
    pem = {"root_certificates": pki.ca.pem, "tls_cert": pki.client.cert,
           "tls_key": pki.client.key}  # fmt: skip
    with Client(broker.address, token=PRODUCER, **pem) as producer:
        producer.enqueue("email:welcome", {"user": 1}, queue="email")
        with pytest.raises(PermissionDenied, match="needs role producer on queue 'sms'"):
            producer.enqueue("sms:hello", queue="sms")
    with Client(broker.address, token=ADMIN, **pem) as admin:
        assert admin.queue_stats("email").pending == 1


async def test_the_async_client_calls_over_mutual_tls_with_certificate_files(
    broker: BrokerHandle, cert_files: tuple[Path, Path, Path]
) -> None:
    ca, cert, key = cert_files
    async with AsyncClient(broker.address, token=ADMIN, root_certificates=ca, tls_cert=cert,
                           tls_key=str(key)) as admin:  # fmt: skip
        await admin.enqueue("email:welcome", queue="email")
        assert (await admin.queue_stats("email")).pending == 1
        with pytest.raises(PermissionDenied):
            async with AsyncClient(broker.address, token=WORKER, root_certificates=ca,
                                   tls_cert=cert, tls_key=key) as worker:  # fmt: skip
                await worker.queue_stats("email")


def test_a_client_without_its_certificate_cannot_reach_a_mutual_tls_broker(
    broker: BrokerHandle, pki: Pki
) -> None:
    with Client(broker.address, token=ADMIN, root_certificates=pki.ca.pem,
                wait_for_ready=False, timeout=5) as client:  # fmt: skip
        with pytest.raises(BrokerUnavailable):
            client.list_queues()


def test_a_client_certificate_without_its_key_is_refused_when_the_client_is_made(pki: Pki) -> None:
    with pytest.raises(ValueError, match="together"):
        Client("127.0.0.1:1", root_certificates=pki.ca.pem, tls_cert=pki.client.cert)


async def test_a_worker_process_runs_tasks_over_mutual_tls_with_a_worker_token(
    broker: BrokerHandle, signals_redis: str, cert_files: tuple[Path, Path, Path]
) -> None:
    ca, cert, key = cert_files
    tls = {"root_certificates": ca, "tls_cert": cert, "tls_key": key}
    async with AsyncClient(broker.address, token=ADMIN, **tls) as admin:
        ids = [(await admin.enqueue("job", queue="email-jobs")).id for _ in range(3)]
    events_client = redis.asyncio.Redis.from_url(signals_redis)
    events = Events(events_client, f"mtls-events:{RUN}")
    worker = await WorkerProcess.start(
        broker.address, "email-jobs", events, name="mtls", redis_url=signals_redis,
        args=["--tls-ca", str(ca), "--tls-cert", str(cert), "--tls-key", str(key),
              "--token", WORKER],
    )  # fmt: skip
    try:
        done = [event for event in await events.take(6) if event[0] == "done"]
        assert sorted(task_id for _, task_id, _, _ in done) == sorted(ids)
        worker.send(signal.SIGTERM)
        assert await worker.wait() == 0
    finally:
        await worker.kill()
        await events_client.aclose()
    async with AsyncClient(broker.address, token=ADMIN, **tls) as admin:
        stats = await admin.queue_stats("email-jobs")
    assert (stats.pending, stats.active, stats.retry) == (0, 0, 0)
