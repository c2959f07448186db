"""The tokens file, token secrecy in logs, failed-auth limits and the ``leasq token`` command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import grpc
import grpc.aio
import pytest
from broker_process import BrokerFactory
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from tls_testing import wait_for_log

from leasq.v1 import inspect_service_pb2, inspect_service_pb2_grpc
from leasq_broker.config import BrokerConfig
from leasq_broker.edge.auth_limit import FAILURE_BURST, LOG_BURST
from leasq_broker.edge.roles import Authorizer, Verdict
from leasq_broker.edge.tokens import TokenFileError, hash_token, parse_tokens

RUN = uuid.uuid4().hex[:8]
TOKENS_FILE_SIZE = 1024


def entry(name: str, secret: str, role: str) -> str:
    return f'[[token]]\nname = "{name}"\nsha256 = "{hash_token(secret)}"\nrole = "{role}"\n'


def write_tokens(path: Path, *entries: str) -> None:
    """The tokens file, padded with a comment to a fixed size, replaced atomically."""
    text = "\n".join(entries)
    text += "#" + " " * (TOKENS_FILE_SIZE - len(text) - 2) + "\n"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


async def list_queues(address: str, token: str) -> grpc.StatusCode:
    """The status code of ListQueues with this token."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = inspect_service_pb2_grpc.InspectServiceStub(channel)
        try:
            await stub.ListQueues(inspect_service_pb2.ListQueuesRequest(), timeout=5,
                                  metadata=[("authorization", f"Bearer {token}")])  # fmt: skip
        except grpc.aio.AioRpcError as error:
            return error.code()
    return grpc.StatusCode.OK


async def test_no_token_ever_appears_in_the_broker_log(
    broker_factory: BrokerFactory, tmp_path: Path
) -> None:
    reader, flag, wrong = f"reader-{RUN}", f"flag-{RUN}", f"wrong-{RUN}"
    tokens = tmp_path / "tokens.toml"
    write_tokens(tokens, entry("dashboard", reader, "reader"))
    # The flag token through the environment: the test harness logs the command line.
    broker = broker_factory(auth_tokens_file=tokens, log_level="debug",
                            env={"LEASQ_AUTH_TOKEN": flag})  # fmt: skip
    async with grpc.aio.insecure_channel(broker.address) as channel:
        stub = inspect_service_pb2_grpc.InspectServiceStub(channel)
        for token in (reader, flag, wrong):
            try:
                await stub.PauseQueue(inspect_service_pb2.PauseQueueRequest(queue="q"),
                                      metadata=[("authorization", f"Bearer {token}")])  # fmt: skip
            except grpc.aio.AioRpcError:
                pass
    assert await broker.stop_async() == 0
    log = broker.log_text()
    assert "permission denied" in log and "not authenticated" in log  # the refusals were logged
    for secret in (reader, flag, wrong):
        assert secret not in log


async def test_failures_beyond_the_allowance_get_resource_exhausted_and_few_log_lines(
    broker_factory: BrokerFactory, tmp_path: Path
) -> None:
    good = f"good-{RUN}"
    broker = broker_factory(auth_token=good)
    codes = []
    async with grpc.aio.insecure_channel(broker.address) as channel:
        stub = inspect_service_pb2_grpc.InspectServiceStub(channel)
        for attempt in range(3 * FAILURE_BURST):
            try:
                await stub.ListQueues(inspect_service_pb2.ListQueuesRequest(), timeout=5,
                                      metadata=[("authorization", f"Bearer guess-{attempt}")])
            except grpc.aio.AioRpcError as error:
                codes.append(error.code())
                last = error
    assert codes[0] == grpc.StatusCode.UNAUTHENTICATED
    assert codes[-1] == grpc.StatusCode.RESOURCE_EXHAUSTED
    status = rpc_status.from_call(last)  # type: ignore[arg-type]
    assert status is not None
    retry = error_details_pb2.RetryInfo()
    assert any(detail.Unpack(retry) for detail in status.details)
    assert retry.retry_delay.seconds >= 1 and "retry in" in (last.details() or "")
    # A valid token from the same address is not held back.
    assert await list_queues(broker.address, good) == grpc.StatusCode.OK
    assert await broker.stop_async() == 0
    assert broker.log_text().count("call refused: not authenticated") <= LOG_BURST + 1


async def test_a_token_removed_from_the_file_is_refused_without_a_restart(
    broker_factory: BrokerFactory, tmp_path: Path
) -> None:
    keep, revoke = f"keep-{RUN}", f"revoke-{RUN}"
    tokens = tmp_path / "tokens.toml"
    write_tokens(tokens, entry("keep", keep, "reader"), entry("gone", revoke, "reader"))
    broker = broker_factory(auth_tokens_file=tokens)
    assert await list_queues(broker.address, revoke) == grpc.StatusCode.OK

    write_tokens(tokens, entry("keep", keep, "reader"))
    deadline = time.monotonic() + 10
    while await list_queues(broker.address, revoke) == grpc.StatusCode.OK:
        assert time.monotonic() < deadline, "the removed token still works after 10 s"
    assert await list_queues(broker.address, keep) == grpc.StatusCode.OK


async def test_sighup_rereads_the_tokens_file(
    broker_factory: BrokerFactory, tmp_path: Path
) -> None:
    old, new = f"old-{RUN}", f"new-{RUN}"
    tokens = tmp_path / "tokens.toml"
    write_tokens(tokens, entry("old", old, "reader"))
    broker = broker_factory(auth_tokens_file=tokens)
    assert await list_queues(broker.address, new) == grpc.StatusCode.UNAUTHENTICATED
    # Same size, same modification time: only the signal can reveal the change.
    before = tokens.stat()
    text = tokens.read_text().replace(entry("old", old, "reader"), entry("new", new, "reader"))
    with tokens.open("r+") as file:
        file.write(text)
    os.utime(tokens, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert await list_queues(broker.address, new) == grpc.StatusCode.UNAUTHENTICATED

    assert broker.process is not None
    broker.process.send_signal(signal.SIGHUP)
    await wait_for_log(broker.log_text, "tokens file loaded", count=2)
    assert await list_queues(broker.address, new) == grpc.StatusCode.OK
    assert await list_queues(broker.address, old) == grpc.StatusCode.UNAUTHENTICATED


def test_a_broker_with_a_malformed_tokens_file_refuses_to_start(
    broker_factory: BrokerFactory, tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens.toml"
    tokens.write_text('[[token]]\nname = "x"\nsha256 = "abc"\nrole = "producer"\n')
    with pytest.raises(Exception, match="sha256 must be 64 hex digits"):
        broker_factory(auth_tokens_file=tokens)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('[[token]]\nname = "a"\nsha256 = "%s"\nrole = "root"\n', "unknown role"),
        ('[[token]]\nname = "a"\nsha256 = "%s"\nrole = "reader"\nqueue = ["x"]\n', "unknown keys"),
        ('[[token]]\nname = "a"\nsha256 = "%s"\nrole = "reader"\nqueues = []\n', "non-empty"),
        ('[[token]]\nname = "a"\nsha256 = "%s"\nrole = "reader"\n'
         '[[token]]\nname = "a"\nsha256 = "%s"\nrole = "admin"\n', "repeats"),
        ('[[token]]\nsha256 = "%s"\nrole = "reader"\n', "name is required"),
    ],
    ids=["unknown role", "misspelt key", "empty queues", "repeated token", "no name"],
)
def test_a_malformed_tokens_file_is_refused_with_the_reason(text: str, error: str) -> None:
    digest = hash_token("t")
    with pytest.raises(TokenFileError, match=error):
        parse_tokens(text.replace("%s", digest))


def test_the_authorizer_is_a_plain_object_that_decides_from_a_token_a_method_and_queues(
    tmp_path: Path,
) -> None:
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(entry("mail", "secret-mail", "producer") + 'queues = ["email*"]\n'
                      + entry("both", "secret-both", "worker").replace(
                          'role = "worker"', 'role = ["worker", "producer"]'))  # fmt: skip
    authorizer = Authorizer.from_config(BrokerConfig(auth_tokens_file=tokens))
    assert authorizer is not None
    enqueue = "/leasq.v1.BrokerService/Enqueue"
    assert authorizer.check("secret-mail", enqueue, ["email"]).allowed
    assert authorizer.check("secret-mail", enqueue, ["sms"]).verdict is Verdict.PERMISSION_DENIED
    assert authorizer.check("secret-mail", "/leasq.v1.BrokerService/Lease").verdict is (
        Verdict.PERMISSION_DENIED)  # fmt: skip
    assert authorizer.check("secret-both", "/leasq.v1.BrokerService/Lease", ["sms"]).allowed
    assert authorizer.check("secret-both", enqueue, ["sms"]).allowed
    assert authorizer.check("nope", enqueue).verdict is Verdict.UNAUTHENTICATED
    assert authorizer.check(None, enqueue).verdict is Verdict.UNAUTHENTICATED
    # Methods it does not know need admin.
    assert not authorizer.check("secret-both", "/leasq.v1.FutureService/Anything").allowed


def test_leasq_token_hash_prints_the_sha256_of_the_token_on_stdin() -> None:
    command = [sys.executable, "-m", "leasq_broker", "token", "hash"]
    done = subprocess.run(command, input="my-token\n", capture_output=True, text=True, check=True)
    assert done.stdout.strip() == hash_token("my-token")


def test_leasq_token_new_prints_a_token_and_an_entry_holding_its_hash() -> None:
    done = subprocess.run([sys.executable, "-m", "leasq_broker", "token", "new"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    token = done.stdout.splitlines()[0].rsplit(" ", 1)[-1]
    (principal,) = parse_tokens(done.stdout).items()
    assert principal[0] == hash_token(token) and len(token) >= 40
