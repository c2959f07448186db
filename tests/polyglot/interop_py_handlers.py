"""Python handlers for the Node.js interop tests, run by ``python -m leasq_worker``.

Each handler prints one JSON line describing what it saw (the test reads the worker's stdout),
then succeeds with a result that names Python as the language that ran it.
"""

from __future__ import annotations

import json
from typing import Any

from leasq_worker.registry import Registry
from leasq_worker.task import Task

registry = Registry()


def _report(task: Task) -> None:
    seen = {
        "event": "py_handled",
        "task_id": task.id,
        "queue": task.queue,
        "type": task.type,
        "payload": task.payload.decode("utf-8"),
        "headers": dict(task.headers),
        "retry_count": task.retry_count,
        "max_retry": task.max_retry,
    }
    print(json.dumps(seen), flush=True)


@registry.handler("email:welcome")
async def welcome(task: Task) -> dict[str, Any]:
    """Succeeds with the recipient, as the Node handler of the same type does."""
    _report(task)
    return {"sent_to": task.json()["to"], "by": "python"}


@registry.handler("report:generate")
async def report(task: Task) -> dict[str, Any]:
    """Finishes at once: the Node handler of this type is the slow one."""
    _report(task)
    return {"pages": 1, "by": "python"}
