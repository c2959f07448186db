"""A tokens file that turns bad while the broker runs: logged, and the tokens read before stay
in force; a good file again takes effect within about a second (the file is checked at most once
a second, when a call comes)."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import grpc
import grpc.aio
from broker_process import BrokerFactory

from leasq.v1 import inspect_service_pb2, inspect_service_pb2_grpc
from leasq_broker.edge.tokens import FILE_CHECK_INTERVAL, hash_token

RUN = uuid.uuid4().hex[:8]
KEEP, DROP = f"keep-{RUN}", f"drop-{RUN}"
MARGIN = 1.0  # a loaded machine's delay beyond the check interval
NOT_RELOADED = "tokens file not reloaded"


def _entry(name: str, secret: str) -> str:
    return f'[[token]]\nname = "{name}"\nsha256 = "{hash_token(secret)}"\nrole = "reader"\n'


def _replace(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


async def _code(stub: inspect_service_pb2_grpc.InspectServiceStub, token: str) -> grpc.StatusCode:
    try:
        await stub.ListQueues(inspect_service_pb2.ListQueuesRequest(), timeout=5,
                              metadata=[("authorization", f"Bearer {token}")])  # fmt: skip
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def test_a_tokens_file_that_turns_bad_is_logged_and_the_tokens_read_before_stay(
    broker_factory: BrokerFactory, tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens.toml"
    _replace(tokens, _entry("keep", KEEP) + _entry("drop", DROP))
    broker = broker_factory(auth_tokens_file=tokens)
    broker.expect_log(NOT_RELOADED)
    async with grpc.aio.insecure_channel(broker.address) as channel:
        stub = inspect_service_pb2_grpc.InspectServiceStub(channel)
        assert await _code(stub, DROP) == grpc.StatusCode.OK

        _replace(tokens, "[[token]\nthis is not toml")
        give_up = time.monotonic() + FILE_CHECK_INTERVAL + MARGIN
        while NOT_RELOADED not in broker.log_text():
            assert time.monotonic() < give_up, "the bad file was not reported"
            assert await _code(stub, DROP) == grpc.StatusCode.OK  # calls make the check
        assert await _code(stub, DROP) == grpc.StatusCode.OK
        assert await _code(stub, KEEP) == grpc.StatusCode.OK

        _replace(tokens, _entry("keep", KEEP))
        changed = time.monotonic()
        while await _code(stub, DROP) == grpc.StatusCode.OK:
            assert time.monotonic() - changed < FILE_CHECK_INTERVAL + MARGIN, \
                "a removed token still works"  # fmt: skip
        assert await _code(stub, DROP) == grpc.StatusCode.UNAUTHENTICATED
        assert await _code(stub, KEEP) == grpc.StatusCode.OK
