"""Where a walk over one state's index stopped: what bulk.lua and search.lua take and answer,
and its opaque page-token form for SearchTasks."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from leasq_broker.errors import InvalidField

#: Pending is a list (walked from its right end, the oldest); every other state a sorted set.
LIST_STATES = frozenset({"pending"})


def index_kind(state: str) -> str:
    """``list`` or ``zset``: how the scripts walk the state's index."""
    return "list" if state in LIST_STATES else "zset"


@dataclass(frozen=True, slots=True)
class Cursor:
    """A task id still in the index and its score ('' and "0" at the start)."""

    task_id: str = ""
    score: str = "0"

    def encode(self, state: str) -> str:
        raw = json.dumps([state, self.task_id, self.score], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode()

    @classmethod
    def decode(cls, token: str, state: str, call: str) -> Cursor:
        """The cursor of a page token of ``call`` for ``state``; "" is the start."""
        if not token:
            return cls()
        try:
            token_state, task_id, score = json.loads(base64.urlsafe_b64decode(token.encode()))
            float(score)
            if token_state != state or not isinstance(task_id, str):
                raise ValueError(token)
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as error:
            raise InvalidField(
                "page_token", f"is not a token from a previous {call} call for this state"
            ) from error
        return cls(task_id, str(score))
