"""Loads the Lua transitions once and calls them by SHA.

Each ``lua/*.lua`` file is one atomic state transition, named by its file; a file whose name
starts with ``_`` is a fragment that scripts share through a ``-- include: _name`` line (Redis
has no imports, so the text is inlined before loading). Calls use EVALSHA;
when Redis answers NOSCRIPT (a restart or SCRIPT FLUSH), the scripts are loaded again and only
the calls that did not run are repeated, so no transition is ever applied twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import (
    BusyLoadingError,
    ExecAbortError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
)

ScriptArg = str | bytes | int | float

# Redis answers a write it will not start with these (OOM, replica, failed persistence, ...):
# the command, or a script up to its first write, changed nothing.
_REFUSAL_TYPES = (OutOfMemoryError, ReadOnlyError, BusyLoadingError, NoScriptError, ExecAbortError)
_REFUSAL_CODES = ("OOM", "READONLY", "MISCONF", "NOREPLICAS", "BUSY", "LOADING", "MASTERDOWN",
                  "CLUSTERDOWN", "TRYAGAIN", "EXECABORT")


def refused_before_writing(error: ResponseError) -> bool:
    """Whether Redis refused a command (or a script at its first write) before it changed
    anything, as opposed to a script that failed at run time part-way through."""
    return isinstance(error, _REFUSAL_TYPES) or str(error).startswith(_REFUSAL_CODES)


_INCLUDE = "-- include: "


def _inline_includes(source: str, files: dict[str, str]) -> str:
    """``source`` with each ``-- include: _name`` line replaced by the fragment's text."""
    return "".join(
        files[line.removeprefix(_INCLUDE).strip()] if line.startswith(_INCLUDE) else line
        for line in source.splitlines(keepends=True)
    )


@dataclass(frozen=True, slots=True)
class ScriptCall:
    """One invocation of a named script."""

    name: str
    keys: Sequence[str]
    args: Sequence[ScriptArg]


class Scripts:
    """The transition scripts of one Redis deployment."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        files = {
            entry.name.removesuffix(".lua"): entry.read_text()
            for entry in resources.files("leasq_broker.lua").iterdir()
            if entry.name.endswith(".lua")
        }
        self._source = {
            name: _inline_includes(text, files)
            for name, text in files.items()
            if not name.startswith("_")
        }
        self._sha: dict[str, str] = {}

    async def load(self) -> None:
        """(Re)load every script; called at start and after NOSCRIPT."""
        for name, source in self._source.items():
            self._sha[name] = await self._redis.script_load(source)

    async def call(self, name: str, keys: Sequence[str], args: Sequence[ScriptArg]) -> Any:
        """Run one script and return its reply."""
        try:
            return await self._redis.evalsha(self._sha[name], len(keys), *keys, *args)
        except NoScriptError:
            await self.load()
            return await self._redis.evalsha(self._sha[name], len(keys), *keys, *args)

    async def call_many(
        self, calls: Sequence[ScriptCall], *, also: Sequence[Sequence[ScriptArg]] = ()
    ) -> list[Any]:
        """Run several scripts in one pipeline (one round trip); replies in call order.

        ``also``: plain idempotent commands (e.g. ``("SADD", key, member)``) sent first in the
        same pipeline, their replies dropped. Script errors are raised after the whole pipeline
        ran; calls refused with NOSCRIPT (which did not run) are repeated after a reload.
        """
        replies = await self.call_each(calls, also=also)
        for reply in replies:
            if isinstance(reply, ResponseError):
                raise reply
        return replies

    async def call_each(
        self, calls: Sequence[ScriptCall], *, also: Sequence[Sequence[ScriptArg]] = (),
        atomic: bool = False, after: Sequence[Sequence[ScriptArg]] = (),
    ) -> list[Any]:
        """Like :meth:`call_many`, but a script that Redis answered with an error has that
        ``ResponseError`` as its reply instead of raising, so the other replies are not lost.

        ``atomic``: everything goes in one MULTI/EXEC transaction, so that Redis runs all of it
        or, when the transaction is refused or the connection fails first, none of it (NOSCRIPT
        calls, which did not run, then go in a second transaction).
        ``after``: like ``also`` but sent after the scripts (an index entry that must not be
        written before the data it points at).
        """
        if len(calls) == 1 and not also and not after:
            only = calls[0]
            try:
                return [await self.call(only.name, only.keys, only.args)]
            except ResponseError as error:
                return [error]
        # One script is atomic by itself; ``also`` holds idempotent commands only.
        atomic = atomic and len(calls) > 1
        replies = await self._pipeline(calls, also, atomic, after)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            await self.load()
            again = await self._pipeline([calls[i] for i in missing], atomic=atomic,
                                         after=after)
            for index, reply in zip(missing, again, strict=True):
                replies[index] = reply
        return replies

    async def _pipeline(
        self, calls: Sequence[ScriptCall], also: Sequence[Sequence[ScriptArg]] = (),
        atomic: bool = False, after: Sequence[Sequence[ScriptArg]] = (),
    ) -> list[Any]:
        pipe = self._redis.pipeline(transaction=atomic)
        for command in also:
            pipe.execute_command(*command)
        for call in calls:
            pipe.evalsha(self._sha[call.name], len(call.keys), *call.keys, *call.args)
        for command in after:
            pipe.execute_command(*command)
        replies = list(await pipe.execute(raise_on_error=False))
        extra = replies[: len(also)] + replies[len(replies) - len(after) :]
        for reply in extra:
            if isinstance(reply, Exception):
                raise reply
        return replies[len(also) : len(replies) - len(after)]
