"""The operator use cases behind InspectService: read tasks and queues, pause, cancel."""

from __future__ import annotations

import base64
import binascii

from leasq_broker import validation as v
from leasq_broker.clock import Clock
from leasq_broker.errors import InvalidField, QueueNotFound, TaskNotFound, WrongState
from leasq_broker.models import QueueCounts, StoredTask
from leasq_broker.reader import TaskReader
from leasq_broker.settings.blocked import Block, explain
from leasq_broker.settings.store import QueueSettingsStore
from leasq_broker.store import TaskStore

_ALLOWED = {
    "run": "only scheduled, retry and archived tasks can be run now",
    "archive": "only pending, scheduled and retry tasks can be archived; cancel an active one",
    "delete": "an active task cannot be deleted (cancel it first), nor a task waiting in a "
              "group (delete or flush the group)",
}
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
# States GetTask explains (TaskInfo.blocked).
_BLOCKABLE = ("pending", "scheduled", "retry", "aggregating")


class Admin:
    """Inspect and operate queues."""

    def __init__(self, store: TaskStore, reader: TaskReader, clock: Clock,
                 queue_settings: QueueSettingsStore | None = None) -> None:
        self._store = store
        self._reader = reader
        self._clock = clock
        self._queue_settings = queue_settings

    async def get_task(self, queue: str, task_id: str) -> StoredTask:
        v.queue_name("queue", queue)
        v.task_id("task_id", task_id)
        task = await self._reader.get_task(queue, task_id)
        if task is None:
            raise TaskNotFound(f"no task {task_id!r} in queue {queue!r}")
        return task

    async def blocked(self, task: StoredTask) -> Block | None:
        """Why ``task`` is not running (GetTask's ``blocked``); None when not asked."""
        if self._queue_settings is None or task.state not in _BLOCKABLE:
            return None
        return explain(task, await self._queue_settings.snapshot(task))

    async def list_queues(self) -> list[tuple[str, bool]]:
        return await self._reader.list_queues()

    async def queue_counts(self, queue: str) -> tuple[QueueCounts, int]:
        """The queue's counts (its approximate memory included) and the clock reading they
        were taken at."""
        v.queue_name("queue", queue)
        now = self._clock.now_ms()
        return await self._reader.queue_counts(queue, now, memory=True), now

    async def every_queue_counts(self) -> tuple[list[QueueCounts], int]:
        """The counts of every known queue, sorted by name (one round trip for the names and
        one for all the counts; memory not measured), and the clock reading."""
        names = await self._reader.queue_names()
        now = self._clock.now_ms()
        return await self._reader.many_queue_counts(names, now), now

    async def list_tasks(
        self, queue: str, state: str, page_size: int, page_token: str
    ) -> tuple[list[StoredTask], str, int]:
        """A page of tasks, the next page token ("" at the end) and the state's total."""
        v.queue_name("queue", queue)
        if not state:
            raise InvalidField("state", "is required: choose the state to list")
        size = page_size or DEFAULT_PAGE_SIZE
        v.in_range("page_size", size, 1, MAX_PAGE_SIZE)
        offset = _decode_token(page_token, state)
        tasks, total = await self._reader.list_tasks(queue, state, offset, size)
        following = offset + size
        token = _encode_token(state, following) if following < total else ""
        return tasks, token, total

    async def require_queue(self, queue: str) -> None:
        """Raise QueueNotFound unless ``queue`` exists (the dashboard's queue and task pages;
        the RPCs answer an unknown queue as an empty one)."""
        v.queue_name("queue", queue)
        if not await self._reader.queue_known(queue):
            raise QueueNotFound(f"no queue {queue!r}: a queue exists from its first enqueue on")

    async def pause(self, queue: str, paused: bool) -> None:
        v.queue_name("queue", queue)
        if not await self._store.set_paused(queue, paused):
            raise QueueNotFound(
                f"no queue {queue!r}: a queue exists from its first enqueue on (check the name)"
            )

    async def move(self, action: str, queue: str, task_id: str) -> StoredTask | None:
        """Run, archive or delete a task by hand; the task afterwards (None once deleted)."""
        v.queue_name("queue", queue)
        v.task_id("task_id", task_id)
        code = await self._store.move(action, queue, task_id, self._clock.now_ms())
        if code == 2:
            raise TaskNotFound(f"no task {task_id!r} in queue {queue!r}")
        if code == 1:
            state = (await self.get_task(queue, task_id)).state
            raise WrongState(
                f"cannot {action} task {task_id!r}: it is {state} ({_ALLOWED[action]})"
            )
        if action == "delete":
            return None
        return await self.get_task(queue, task_id)

    async def cancel(self, queue: str, task_id: str) -> StoredTask:
        v.queue_name("queue", queue)
        v.task_id("task_id", task_id)
        code = await self._store.cancel(queue, task_id)
        if code == 2:
            raise TaskNotFound(f"no task {task_id!r} in queue {queue!r}")
        if code == 1:
            raise WrongState(f"task {task_id!r} is not active; only active tasks can be canceled")
        return await self.get_task(queue, task_id)


def page_window(page_token: str, state: str, page_size: int) -> tuple[int, str]:
    """Where a ListTasks page token of ``state`` starts, and the token of the page before
    it ("" for the first page): for pagers that go back as well as on."""
    offset = _decode_token(page_token, state)
    before = max(0, offset - page_size)
    return offset, _encode_token(state, before) if before else ""


def _encode_token(state: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{state}:{offset}".encode()).decode()


def _decode_token(token: str, state: str) -> int:
    if not token:
        return 0
    try:
        token_state, offset = base64.urlsafe_b64decode(token.encode()).decode().split(":")
        if token_state != state or int(offset) < 0:
            raise ValueError(token)
        return int(offset)
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise InvalidField(
            "page_token", "is not a token from a previous ListTasks call for this state"
        ) from error
