"""SearchTasks: the tasks of one state matching every criterion, a bounded slice per call.

search.lua examines at most SCRIPT_SLICE tasks per call (read only, so Redis is never blocked
long) and answers the ids that match; a SearchTasks call runs it until it has examined
``budget`` tasks (10,000), found a page of matches, or reached the index's end. The page token
carries the cursor: the last task examined.
"""

from __future__ import annotations

from leasq_broker.keys import Keys
from leasq_broker.operations.cursor import Cursor, index_kind
from leasq_broker.operations.models import SearchCriteria, SearchResult
from leasq_broker.reader import TaskReader
from leasq_broker.scripts import Scripts

#: Most tasks one SearchTasks call examines (the contract's promise).
EXAMINE_BUDGET = 10_000
#: Most tasks one script call examines.
SCRIPT_SLICE = 1000


class Searcher:
    """Finds tasks by id prefix, type, payload substring and last error type."""

    def __init__(self, scripts: Scripts, keys: Keys, reader: TaskReader,
                 budget: int = EXAMINE_BUDGET) -> None:
        self._scripts = scripts
        self._keys = keys
        self._reader = reader
        self._budget = budget

    async def search(self, queue: str, state: str, criteria: SearchCriteria, page_size: int,
                     cursor: Cursor) -> SearchResult:
        k = self._keys
        index = k.pending(queue) if state == "pending" else getattr(k, state)(queue)
        examined = 0
        found: list[str] = []
        done = False
        while examined < self._budget and len(found) < page_size:
            reply = await self._scripts.call("search", [index, k.tasks(queue),
                                                        k.envelopes(queue)], [
                index_kind(state), cursor.task_id, cursor.score,
                min(SCRIPT_SLICE, self._budget - examined), page_size - len(found),
                criteria.id_prefix, criteria.type, criteria.error_type,
                criteria.payload_contains, state,
            ])
            done = bool(int(reply[0]))
            cursor = Cursor(_text(reply[1]), _text(reply[2]))
            examined += int(reply[3])
            found += [_text(task_id) for task_id in reply[4:]]
            if done:
                break
        tasks = await self._reader.tasks(queue, found)
        return SearchResult(tasks, "" if done else cursor.encode(state), examined)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
