"""Loads the Lua transitions once and calls them by SHA.

Each ``lua/*.lua`` file is one atomic state transition, named by its file; a file whose name
starts with ``_`` is a fragment that scripts share through a ``-- include: _name`` line (Redis
has no imports, so the text is inlined before loading). Calls use EVALSHA;
when Redis answers NOSCRIPT (a restart or SCRIPT FLUSH), the scripts are loaded again and only
the calls that did not run are repeated, so no transition is ever applied twice.

With a :class:`ReplicaAck` (``--redis-min-replicas-ack``), every call that may write is followed
by ``WAIT replicas timeout`` in the same pipeline, hence on the same connection right after the
write: Redis answers how many replicas hold everything this connection wrote, and fewer than
asked fails the call with :class:`ReplicationUnconfirmed` (UNAVAILABLE) instead of confirming a
change that a failover could lose.

On a Redis Cluster (redis-py's ``RedisCluster``, :func:`~leasq_broker.cluster_slots.is_cluster`):
SCRIPT LOAD goes to every primary the client knows (a primary promoted later answers NOSCRIPT,
and the reload reaches it); EVALSHA goes to the primary of its first key's slot (every key of a
call shares that slot: the queue's hash tag); a pipeline of calls on several slots is split per
node by redis-py's ``ClusterPipeline`` (non-transactional). ``atomic=True`` cannot be honoured
there, MULTI/EXEC being limited to one slot: the calls run one by one, each script still atomic
by itself, and the callers, which report an outcome per queue, see each call's own reply.
``--redis-min-replicas-ack`` is refused on a cluster (:class:`ReplicaAckOnCluster`): WAIT must
follow the write on the same connection, which the cluster client does not promise.

On one Redis without ``--redis-min-replicas-ack``, calls go through a
:class:`~leasq_broker.script_lane.ScriptLane` (one pipelined connection, a fraction of
redis-py's cost per round trip, never re-sending a call); everything else, SCRIPT LOAD
included, stays on the redis-py client.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import (
    BusyLoadingError,
    ExecAbortError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    ResponseError,
)

from leasq_broker.cluster_slots import is_cluster
from leasq_broker.errors import StorageUnavailable
from leasq_broker.script_lane import Command, ScriptLane, lane_for

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
# Scripts that only read: no WAIT after them.
READ_ONLY_SCRIPTS = frozenset({"queue_stats", "search"})


@dataclass(frozen=True, slots=True)
class ReplicaAck:
    """Wait for ``replicas`` replicas, at most ``timeout_ms``, after every write."""

    replicas: int
    timeout_ms: int


class ReplicationUnconfirmed(StorageUnavailable):
    """The primary applied a change but too few replicas acknowledged it in time."""

    reason = "REPLICATION_UNCONFIRMED"

    def __init__(self, acknowledged: int, wanted: int) -> None:
        super().__init__(
            f"the change was applied on the Redis primary but only {acknowledged} of {wanted} "
            "required replicas acknowledged it in time, so it may or may not survive a "
            "failover; retry (an enqueue with a task id is idempotent)")


class ReplicaAckOnCluster(RedisError):
    """``--redis-min-replicas-ack`` asked for on a Redis Cluster: refused at start (a
    ``RedisError``, so that ``leasq serve`` reports it as the reason it failed and exits 1)."""

    def __init__(self) -> None:
        super().__init__(
            "--redis-min-replicas-ack is not supported with a Redis Cluster (redis+cluster://): "
            "WAIT must run on the connection that wrote, and the cluster client does not "
            "promise that; set it to 0, or use one Redis or Sentinel (docs/redis.md)")


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

    def __init__(self, redis: Redis, replica_ack: ReplicaAck | None = None) -> None:
        self._redis = redis
        self._ack = replica_ack if replica_ack is not None and replica_ack.replicas else None
        self._cluster = is_cluster(redis)
        if self._cluster and self._ack is not None:
            raise ReplicaAckOnCluster()
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
        self._lane: ScriptLane | None = (
            lane_for(redis) if self._ack is None and not self._cluster else None)

    @property
    def in_order(self) -> bool:
        """Whether every script call goes out on one connection in call order, so that Redis
        runs a call made after another one after it (the lane); not so over a pool."""
        return self._lane is not None

    async def aclose(self) -> None:
        """Close the lane's connection (the redis-py client is closed by its owner)."""
        if self._lane is not None:
            await self._lane.aclose()

    async def load(self) -> None:
        """(Re)load every script; called at start and after NOSCRIPT."""
        for name, source in self._source.items():
            self._sha[name] = await self._redis.script_load(source)

    async def call(self, name: str, keys: Sequence[str], args: Sequence[ScriptArg]) -> Any:
        """Run one script and return its reply."""
        if self._ack is not None and name not in READ_ONLY_SCRIPTS:
            return (await self.call_many([ScriptCall(name, keys, args)]))[0]
        if self._lane is not None:
            return await self._lane_call(name, keys, args)
        try:
            return await self._redis.evalsha(self._sha[name], len(keys), *keys, *args)
        except NoScriptError:
            await self.load()
            return await self._redis.evalsha(self._sha[name], len(keys), *keys, *args)

    async def _lane_call(self, name: str, keys: Sequence[str], args: Sequence[ScriptArg]
                         ) -> Any:  # fmt: skip
        assert self._lane is not None
        for attempt in range(2):
            (reply,) = await self._lane.execute(
                [("EVALSHA", self._sha[name], len(keys), *keys, *args)])
            if isinstance(reply, NoScriptError) and attempt == 0:
                await self.load()  # it did not run: safe to send again
                continue
            if isinstance(reply, Exception):  # also LOADING and the like: ConnectionErrors
                raise reply
            return reply
        raise AssertionError("unreachable")

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
        if len(calls) == 1 and not also and not after and not self._waits(calls):
            only = calls[0]
            try:
                return [await self.call(only.name, only.keys, only.args)]
            except ResponseError as error:
                return [error]
        # One script is atomic by itself; ``also`` holds idempotent commands only. A cluster
        # has no MULTI/EXEC over several slots: the calls then run one by one (docstring).
        atomic = atomic and len(calls) > 1 and not self._cluster
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
        if self._lane is not None:
            commands: list[Command] = [*also]
            commands += [("EVALSHA", self._sha[call.name], len(call.keys), *call.keys,
                          *call.args) for call in calls]  # fmt: skip
            commands += after
            replies = await self._lane.execute(commands, transaction=atomic)
            return self._script_replies(replies, len(also), len(after))
        wait = self._waits(calls)
        pipe = self._redis.pipeline(transaction=atomic and not wait)
        if atomic and wait:  # WAIT inside MULTI would not block: EXEC by hand, WAIT after
            pipe.execute_command("MULTI")
        for command in also:
            pipe.execute_command(*command)
        for call in calls:
            # execute_command: redis-py's ClusterPipeline blocks its evalsha() helper
            pipe.execute_command("EVALSHA", self._sha[call.name], len(call.keys), *call.keys,
                                 *call.args)
        for command in after:
            pipe.execute_command(*command)
        replies = await self._execute(pipe, wait, manual_exec=atomic and wait)
        return self._script_replies(replies, len(also), len(after))

    @staticmethod
    def _script_replies(replies: list[Any], also: int, after: int) -> list[Any]:
        """The scripts' replies of a pipeline that sent ``also`` commands before them and
        ``after`` commands after; those commands' errors and connection errors raise."""
        extra = replies[:also] + replies[len(replies) - after :]
        for reply in extra:
            if isinstance(reply, Exception):
                raise reply
        for reply in replies:
            # A cluster pipeline answers a node it could not reach with the connection error
            # in place of that node's replies; one Redis raises it for the whole pipeline. Do
            # the same: whether those scripts ran is unknown, so the call fails as a whole
            # (UNAVAILABLE; what did run on other nodes is safe to repeat or is reclaimed).
            if isinstance(reply, Exception) and not isinstance(reply, ResponseError):
                raise reply
        return replies[also : len(replies) - after]

    def _waits(self, calls: Sequence[ScriptCall]) -> bool:
        """Whether these calls are followed by WAIT (some may write and the knob is on)."""
        return self._ack is not None and any(c.name not in READ_ONLY_SCRIPTS for c in calls)

    async def _execute(self, pipe: Pipeline, wait: bool, *, manual_exec: bool) -> list[Any]:
        """The pipeline's replies; with ``wait``, the WAIT reply is checked and dropped (and a
        hand-made MULTI/EXEC unwrapped)."""
        if not wait or self._ack is None:
            return list(await pipe.execute(raise_on_error=False))
        if manual_exec:
            pipe.execute_command("EXEC")
        pipe.execute_command("WAIT", self._ack.replicas, self._ack.timeout_ms)
        replies = list(await pipe.execute(raise_on_error=False))
        acknowledged = replies.pop()
        if manual_exec:
            executed = replies.pop()
            if isinstance(executed, Exception):
                raise executed
            replies = list(executed)
        if isinstance(acknowledged, Exception):
            raise acknowledged
        if int(acknowledged) < self._ack.replicas:
            raise ReplicationUnconfirmed(int(acknowledged), self._ack.replicas)
        return replies
