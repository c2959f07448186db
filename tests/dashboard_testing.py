"""What the dashboard tests share besides fixtures: the served broker and signing in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from broker_process import BrokerHandle

from leasq.v1 import broker_service_pb2_grpc, inspect_service_pb2_grpc, schedule_service_pb2_grpc
from leasq_broker.edge.tokens import hash_token


@dataclass(frozen=True)
class Served:
    """A broker serving the dashboard at ``url`` (ends in ``/``), and sync stubs on it."""

    broker: BrokerHandle
    url: str
    stub: broker_service_pb2_grpc.BrokerServiceStub
    inspect: inspect_service_pb2_grpc.InspectServiceStub
    schedules: schedule_service_pb2_grpc.ScheduleServiceStub
    metadata: tuple[tuple[str, str], ...] = ()

    def at(self, path: str) -> str:
        """The absolute URL of a dashboard path (``"queues/q"``)."""
        return self.url + path.lstrip("/")


ServedFactory = Callable[..., Served]


def sign_in(page: Any, served: Served, token: str) -> None:
    """Open the dashboard in ``page`` and sign in with ``token`` (lands on the login form)."""
    page.goto(served.url)
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")


ADMIN, READER, PRODUCER = "admin-secret-token", "reader-secret-token", "producer-secret-token"


def tokens_file(tmp_path: Path) -> Path:
    """A broker tokens file with one token per role: ``ADMIN``, ``READER``, ``PRODUCER``."""
    path = tmp_path / "tokens.toml"
    path.write_text("".join(
        f'[[token]]\nname = "{name}"\nsha256 = "{hash_token(secret)}"\nrole = "{name}"\n\n'
        for name, secret in (("admin", ADMIN), ("reader", READER), ("producer", PRODUCER))))
    return path
