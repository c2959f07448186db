"""The members of an aggregated task, as a handler sees them.

A task enqueued with a ``group`` waits until its group is flushed into one task of the same
type; the handler of that type gets the batch as ``task.members``, in the order the members
joined the group. Each member is a thin read-only view over the leased message, like
:class:`leasq_worker.Task` itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from leasq.v1 import task_pb2

Decoder = Callable[[bytes], Any]


class PayloadView:
    """What a task and a group member share: id, payload, headers and their decoding.

    Read from the protobuf message on access, so nothing is converted that a handler does not
    ask for.
    """

    __slots__ = ("_decoder", "_headers", "_pb")

    def __init__(
        self, message: task_pb2.LeasedTask | task_pb2.GroupMember, decoder: Decoder | None
    ) -> None:
        self._pb = message
        self._decoder = decoder
        self._headers: dict[str, str] | None = None

    @property
    def id(self) -> str:
        """The task id (the producer's task_id or a broker-made one), unique in its queue."""
        return self._pb.id

    @property
    def payload(self) -> bytes:
        """Payload bytes as the producer gave them."""
        return self._pb.payload

    @property
    def headers(self) -> Mapping[str, str]:
        """Headers as the producer gave them (trace context, tenant, content type)."""
        if self._headers is None:
            self._headers = dict(self._pb.headers)
        return self._headers

    def json(self) -> Any:
        """The payload parsed as JSON (the SDK's convention for dict payloads); None when
        empty."""
        return json.loads(self._pb.payload) if self._pb.payload else None

    def decode(self) -> Any:
        """The payload decoded by the task definition the handler was registered with (e.g.
        ``leasq_sdk.TaskDef.decode``: the dataclass); :meth:`json` for a plain type name."""
        return self._decoder(self._pb.payload) if self._decoder else self.json()


class Member(PayloadView):
    """One task of an aggregated group: its id, payload, headers and enqueue time."""

    __slots__ = ()

    def __init__(self, member: task_pb2.GroupMember, decoder: Decoder | None = None) -> None:
        super().__init__(member, decoder)

    @property
    def enqueued_at(self) -> datetime | None:
        """When the member was enqueued."""
        if not self._pb.HasField("enqueued_at"):
            return None
        stamp = self._pb.enqueued_at
        return datetime.fromtimestamp(stamp.seconds + stamp.nanos / 1e9, tz=UTC)

    def __repr__(self) -> str:
        return f"Member(id={self.id!r})"
