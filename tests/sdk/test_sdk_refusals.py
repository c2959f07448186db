"""Refusals that retrying cannot cure are raised at once, never retried, even for calls the SDK
retries on UNAVAILABLE (an Inspect read here): a wrong or missing token, a role that does not
allow the call, and the rate-limited answer to too many failed attempts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from broker_process import BrokerFactory, BrokerHandle

from leasq_broker.edge.tokens import hash_token
from leasq_sdk import AsyncClient, Client, LeasqError, PermissionDenied, Unauthenticated

ADMIN, PRODUCER = "admin-secret", "producer-secret"


@pytest.fixture
def guarded(broker_factory: BrokerFactory, tmp_path: Path) -> BrokerHandle:
    """A broker with an admin token and a producer token, logging every call."""
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(f'[[token]]\nname = "api"\nsha256 = "{hash_token(PRODUCER)}"\n'
                      'role = "producer"\n')  # fmt: skip
    return broker_factory(auth_token=ADMIN, auth_tokens_file=tokens, log_level="debug")


def _codes(broker: BrokerHandle, method: str) -> list[str]:
    """Codes of the calls of ``method`` in the access log (stops the broker first)."""
    broker.stop()
    codes = []
    for line in broker.log_text().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("event") == "rpc" and entry.get("method", "").endswith(f"/{method}"):
                codes.append(entry["code"])
    return codes


async def test_refusals_are_raised_after_one_attempt_by_both_clients(guarded: BrokerHandle) -> None:
    expected = []
    for token, error in ((None, Unauthenticated), ("wrong", Unauthenticated),
                         (PRODUCER, PermissionDenied)):  # fmt: skip
        with Client(guarded.address, token=token, timeout=10) as client:
            with pytest.raises(error):
                client.queue_stats("default")
        async with AsyncClient(guarded.address, token=token, timeout=10) as aclient:
            with pytest.raises(error):
                await aclient.queue_stats("default")
        code = "PERMISSION_DENIED" if error is PermissionDenied else "UNAUTHENTICATED"
        expected += [code, code]
    # Past the failed-attempt allowance the answer is RESOURCE_EXHAUSTED: raised, not retried.
    with Client(guarded.address, token="wrong", timeout=10) as client:
        raised = []
        for _ in range(12):
            with pytest.raises(LeasqError) as refused:
                client.queue_stats("default")
            raised.append(refused.value.code.name)
    assert "RESOURCE_EXHAUSTED" in raised
    assert _codes(guarded, "GetQueueStats") == expected + raised
