"""Fixtures of the operator CLI tests: ``leasq`` bound to the test's broker, and an SDK client
on the same broker to seed state and check what a command changed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from broker_process import BrokerHandle
from cli_testing import Leasq, Run, run_in_process

from leasq_sdk import Client


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty HOME for the command (no config file of the machine applies)."""
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def leasq(broker: BrokerHandle, home: Path) -> Leasq:
    """``leasq("task", "ls", ...) -> Run``: the command in this process, against ``broker``
    (``--broker`` first; ``input=`` feeds standard input, ``env=`` adds variables)."""

    def run(*args: str, input: str | None = None,
            env: dict[str, str] | None = None) -> Run:
        return run_in_process(["--broker", broker.address, *args], home=home, env=env,
                              input=input)

    return run


@pytest.fixture
def client(broker: BrokerHandle) -> Iterator[Client]:
    """An SDK client on ``broker``."""
    with Client(broker.address) as sdk_client:
        yield sdk_client
