"""What group tests share: one replica's producer and groups use case."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from leasq_broker.groups.service import Groups
from leasq_broker.producer import Producer
from leasq_broker.reader import TaskReader
from leasq_broker.store import TaskStore


@dataclass
class Replica:
    """What one broker replica holds for groups."""

    producer: Producer
    groups: Groups
    store: TaskStore
    reader: TaskReader
    due_notes: list[int]


ReplicaFactory = Callable[[], Replica]
