"""TLS and mutual TLS on the broker's port, and certificates replaced while it serves."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
import grpc.aio
import pytest
from broker_process import BrokerFactory, BrokerHandle
from tls_testing import (
    Issued,
    Pki,
    ServerFiles,
    overwrite_keeping_stat,
    same_certificate,
    served_certificate,
    wait_for_log,
)

from leasq.v1 import inspect_service_pb2, inspect_service_pb2_grpc

# A channel of its own per test client: gRPC would otherwise share one connection between
# channels of equal arguments, and a test of new connections must make new connections.
LOCAL_POOL = [("grpc.use_local_subchannel_pool", 1)]


@asynccontextmanager
async def tls_channel(
    address: str, roots: bytes, client: Issued | None = None
) -> AsyncIterator[grpc.aio.Channel]:
    creds = grpc.ssl_channel_credentials(
        roots, client.key if client else None, client.cert if client else None
    )
    async with grpc.aio.secure_channel(address, creds, options=LOCAL_POOL) as channel:
        yield channel


async def list_queues(channel: grpc.aio.Channel) -> None:
    stub = inspect_service_pb2_grpc.InspectServiceStub(channel)
    await stub.ListQueues(inspect_service_pb2.ListQueuesRequest(), timeout=5)


async def refused_code(address: str, roots: bytes, client: Issued | None = None) -> grpc.StatusCode:
    async with tls_channel(address, roots, client) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await list_queues(channel)
    return refused.value.code()


async def test_a_client_trusting_the_ca_calls_the_broker_over_tls(
    broker_factory: BrokerFactory, server_files: ServerFiles, pki: Pki
) -> None:
    broker = broker_factory(**server_files.flags(mutual=False))
    async with tls_channel(broker.address, pki.ca.pem) as channel:
        await list_queues(channel)
    assert '"transport": "tls"' in broker.log_text()


async def test_a_plaintext_client_is_refused_by_a_tls_broker(
    broker_factory: BrokerFactory, server_files: ServerFiles
) -> None:
    broker = broker_factory(**server_files.flags(mutual=False))
    async with grpc.aio.insecure_channel(broker.address, options=LOCAL_POOL) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await list_queues(channel)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_under_mutual_tls_a_client_certificate_of_the_ca_is_accepted(
    broker_factory: BrokerFactory, server_files: ServerFiles, pki: Pki
) -> None:
    broker = broker_factory(**server_files.flags(mutual=True))
    async with tls_channel(broker.address, pki.ca.pem, pki.client) as channel:
        await list_queues(channel)
    assert '"transport": "mtls"' in broker.log_text()


@pytest.mark.parametrize("client", ["none", "expired", "foreign"])
async def test_under_mutual_tls_a_client_without_a_valid_certificate_is_refused(
    broker_factory: BrokerFactory, server_files: ServerFiles, pki: Pki, client: str
) -> None:
    broker = broker_factory(**server_files.flags(mutual=True))
    certificate = {"none": None, "expired": pki.expired_client,
                   "foreign": pki.foreign_client}[client]  # fmt: skip
    assert await refused_code(broker.address, pki.ca.pem, certificate) == (
        grpc.StatusCode.UNAVAILABLE
    )


def _same_process(broker: BrokerHandle, pid: int) -> bool:
    return broker.running and broker.process is not None and broker.process.pid == pid


async def test_replaced_certificate_files_reach_new_connections_and_spare_open_ones(
    broker_factory: BrokerFactory, server_files: ServerFiles, pki: Pki
) -> None:
    broker = broker_factory(**server_files.flags(mutual=False))
    assert broker.process is not None
    pid = broker.process.pid
    async with tls_channel(broker.address, pki.ca.pem) as old_client:
        await list_queues(old_client)
        server_files.install(pki.other_server, pki.ca.pem)

        assert same_certificate(served_certificate(broker.address), pki.other_server.cert)
        async with tls_channel(broker.address, pki.other_ca.pem) as new_client:
            await list_queues(new_client)
        assert await refused_code(broker.address, pki.ca.pem) == grpc.StatusCode.UNAVAILABLE
        # The connection made before the rotation still works: it trusts only the old CA,
        # so it cannot have been made again.
        await list_queues(old_client)
    assert _same_process(broker, pid)
    assert "tls certificates reloaded" in broker.log_text()


async def test_sighup_rereads_certificates_whose_change_the_file_times_do_not_show(
    broker_factory: BrokerFactory, server_files: ServerFiles, pki: Pki
) -> None:
    broker = broker_factory(**server_files.flags(mutual=False))
    assert broker.process is not None
    overwrite_keeping_stat(server_files.key, pki.other_server.key)
    overwrite_keeping_stat(server_files.cert, pki.other_server.cert)
    assert same_certificate(served_certificate(broker.address), pki.server.cert)

    broker.process.send_signal(signal.SIGHUP)
    await wait_for_log(broker.log_text, "SIGHUP: reloading")

    assert same_certificate(served_certificate(broker.address), pki.other_server.cert)
    async with tls_channel(broker.address, pki.other_ca.pem) as client:
        await list_queues(client)


async def test_a_replaced_client_ca_decides_which_client_certificates_are_accepted(
    broker_factory: BrokerFactory, server_files: ServerFiles, pki: Pki
) -> None:
    broker = broker_factory(**server_files.flags(mutual=True))
    assert await refused_code(broker.address, pki.ca.pem, pki.foreign_client) == (
        grpc.StatusCode.UNAVAILABLE
    )
    server_files.install(pki.server, pki.other_ca.pem)

    async with tls_channel(broker.address, pki.ca.pem, pki.foreign_client) as client:
        await list_queues(client)
    assert await refused_code(broker.address, pki.ca.pem, pki.client) == (
        grpc.StatusCode.UNAVAILABLE
    )


async def test_a_key_that_does_not_match_the_certificate_is_not_loaded_and_the_old_pair_stays(
    broker_factory: BrokerFactory, server_files: ServerFiles, pki: Pki
) -> None:
    broker = broker_factory(**server_files.flags(mutual=False))
    broker.expect_log("tls certificates not reloaded")
    server_files.install(Issued(pki.server.cert, pki.other_server.key), pki.ca.pem)

    async with tls_channel(broker.address, pki.ca.pem) as client:
        await list_queues(client)
    assert same_certificate(served_certificate(broker.address), pki.server.cert)
    assert "tls certificates not reloaded" in broker.log_text()


def test_a_broker_refuses_to_start_with_a_key_that_does_not_match_its_certificate(
    broker_factory: BrokerFactory, server_files: ServerFiles, pki: Pki
) -> None:
    server_files.install(Issued(pki.server.cert, pki.other_server.key), pki.ca.pem)
    with pytest.raises(Exception, match="cannot use") as failed:
        broker_factory(**server_files.flags(mutual=False))
    assert "broker exited with 1" in str(failed.value)
