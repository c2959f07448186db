"""Fixtures of the operator CLI tests: ``leasq`` bound to the test's broker, and an SDK client
on the same broker to seed state and check what a command changed."""

from __future__ import annotations

from pathlib import Path

import pytest
from broker_process import BrokerHandle
from cli_testing import Leasq, Run, run_in_process


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


