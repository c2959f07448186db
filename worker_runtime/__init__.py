"""Leasq worker runtime: register handlers on a :class:`Registry`, run them with a :class:`Worker`.

    registry = Registry()

    @registry.handler("email:welcome")
    async def send_welcome(task: Task) -> None: ...

    await Worker(registry, queues={"critical": 6, "default": 3}, concurrency=50).run()

or ``leasq worker myapp.tasks:registry --queue critical=6 --queue default=3``.
"""

from leasq_worker.errors import DeadlineExceeded, RetryAfter, SkipRetry, TaskTimeout
from leasq_worker.members import Member
from leasq_worker.middleware import CallNext, Middleware
from leasq_worker.registry import Registry
from leasq_worker.task import Task
from leasq_worker.worker import Worker

__all__ = [
    "CallNext",
    "DeadlineExceeded",
    "Member",
    "Middleware",
    "Registry",
    "RetryAfter",
    "SkipRetry",
    "Task",
    "TaskTimeout",
    "Worker",
]
