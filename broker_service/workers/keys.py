"""Key names of the worker registry.

Every worker key carries the hash tag ``{~workers}``: they all live in one Redis Cluster slot,
so a script may touch a worker's registration and the index together. ``~`` cannot start a
queue name, so no queue's keys share the tag.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The wake-up message (on the notifier's channel) that tells brokers a worker got a command.
#: Queue names never start with ``~``, so no queue's waiters take it for theirs.
WAKE_PREFIX = "~w:"


def wake_name(worker_id: str) -> str:
    """The name under which a worker's command wake-ups reach the notifier's listeners."""
    return WAKE_PREFIX + worker_id


@dataclass(frozen=True, slots=True)
class WorkerKeys:
    """Worker key names under one deployment prefix."""

    prefix: str = "leasq"

    def worker(self, worker_id: str) -> str:
        """Hash: one worker's registration (meta, queues, first/last seen, command); expires
        with the worker."""
        return f"{self.prefix}:{{~workers}}:w:{worker_id}"

    def index(self) -> str:
        """Sorted set: worker ids scored by their latest recorded call (ms)."""
        return f"{self.prefix}:{{~workers}}:ids"
