"""Handlers for the group worker tests, run by ``python -m leasq_worker group_handlers:...``.

Each handler prints one JSON line (``"event": "batch"``) with what it saw: the task, its group
and every member (the test reads the worker's output), then succeeds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from leasq_sdk import TaskDef
from leasq_worker import Member, Registry, RetryAfter, Task


@dataclass
class Line:
    n: int
    text: str


#: Declared once: the test enqueues with it, the worker decodes members with it.
DIGEST = TaskDef("digest", Line)

registry = Registry()
#: A registry with a process-pool handler (its worker starts a pool; kept apart for speed).
process_registry = Registry()


def _member(member: Member) -> dict[str, Any]:
    line = member.decode()
    assert isinstance(line, Line), f"{member.id} decoded as {line!r}"
    return {
        "id": member.id,
        "n": line.n,
        "text": line.text,
        "json": member.json(),
        "headers": dict(member.headers),
        "enqueued_at": member.enqueued_at.timestamp() if member.enqueued_at else None,
    }


def report(task: Task) -> int:
    seen = {
        "event": "batch",
        "task_id": task.id,
        "type": task.type,
        "group": task.group,
        "attempt": task.attempt,
        "members": [_member(m) for m in task.members],
    }
    print(json.dumps(seen), flush=True)
    return len(task.members)


@registry.handler(DIGEST)
def digest(task: Task) -> int:
    """A sync handler: the batch, decoded by the task definition."""
    return report(task)


@registry.handler(TaskDef("digest:flaky", Line))
async def flaky_digest(task: Task) -> int:
    """Fails its first attempt: the retry must carry the same members."""
    if task.attempt == 1:
        print(json.dumps({"event": "failing", "task_id": task.id}), flush=True)
        raise RetryAfter(0.05, "first attempt fails")
    return report(task)


def cpu_digest(task: Task) -> int:
    """Runs in a process-pool child: the members travel with the pickled task."""
    return report(task)


process_registry.add(TaskDef("digest", Line), cpu_digest, process=True)
