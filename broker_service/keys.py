"""Every Redis key name Leasq uses, as pure functions.

All keys of one queue carry the queue as a hash tag (``leasq:{q}:...``) so that a queue's keys
live on one Redis Cluster slot and one Lua script can touch them atomically. Scripts never
build or read key names at run time: every key a script touches is passed in ``KEYS`` (what
Redis Cluster requires). That is why a queue's tasks are fields of per-queue hashes rather than
keys of their own: a script reaches a task it pops from an index by id, inside a key it was
given. Layout version 2 (see :meth:`Keys.layout_version` and ``migrations.py``):

- ``tasks``: task id -> the task's fields (short names: s, mr, na, uk, ...; every value a
  string), packed with MessagePack (Redis' ``cmsgpack``; ``lua/_task.lua``, ``task_records.py``)
- ``env``: task id -> the task's envelope bytes, apart so that a state change never re-encodes
  them
- ``ulocks`` / ``uexp``: unique locks, digest -> holder task id, and digest scored by expiry
- ``kpend`` / ``kpos``: PENDING tasks of concurrency keys, one sorted set for all keys (members
  ``key\\0<sequence>id``, read by lex range) and id -> member (see ``lua/_flow.lua``)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from leasq_broker.cluster_slots import slot_of, slot_tag

# The kinds of background work that have a due index (see :meth:`Keys.due_forward`).
DUE_KINDS = ("forward", "reclaim", "janitor")


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names under one deployment prefix (default ``leasq``)."""

    prefix: str = "leasq"
    # Redis Cluster: the due indexes exist once per slot (see :meth:`due_index`).
    cluster: bool = False

    def tasks(self, queue: str) -> str:
        """Hash: task id -> the task's record, a MessagePack map of its fields (all values
        strings) without the envelope (see :mod:`leasq_broker.task_records`)."""
        return f"{self.prefix}:{{{queue}}}:tasks"

    def envelopes(self, queue: str) -> str:
        """Hash: task id -> the task's envelope bytes (an AGGREGATING member: its
        GroupMember bytes). Kept apart from the record: it is immutable and may be large."""
        return f"{self.prefix}:{{{queue}}}:env"

    def pending(self, queue: str) -> str:
        """List: LPUSH to enqueue, RPOP to lease (so the right end is the oldest)."""
        return f"{self.prefix}:{{{queue}}}:pending"

    def scheduled(self, queue: str) -> str:
        """Sorted set scored by process-at time (ms)."""
        return f"{self.prefix}:{{{queue}}}:scheduled"

    def retry(self, queue: str) -> str:
        """Sorted set scored by next attempt time (ms)."""
        return f"{self.prefix}:{{{queue}}}:retry"

    def active(self, queue: str) -> str:
        """Sorted set scored by lease expiry (ms)."""
        return f"{self.prefix}:{{{queue}}}:active"

    def archived(self, queue: str) -> str:
        """Sorted set scored by archive time (ms)."""
        return f"{self.prefix}:{{{queue}}}:archived"

    def completed(self, queue: str) -> str:
        """Sorted set scored by removal time (completed-at + retention, ms)."""
        return f"{self.prefix}:{{{queue}}}:completed"

    def paused(self, queue: str) -> str:
        return f"{self.prefix}:{{{queue}}}:paused"

    def waiting(self, queue: str) -> str:
        """Set while some broker long-polls this queue; its TTL is the latest poll deadline."""
        return f"{self.prefix}:{{{queue}}}:waiting"

    def settled(self, queue: str, task_id: str) -> str:
        """String: the token of the task's latest settled lease, kept a while so that a repeated
        Ack/Nack with that token is answered "already settled"."""
        return f"{self.prefix}:{{{queue}}}:settled:{task_id}"

    def unique_locks(self, queue: str) -> str:
        """Hash: unique-lock digest -> the task id holding it. A lock is held while its
        :meth:`unique_expiry` score is in the future; a task record's ``uk`` is its digest."""
        return f"{self.prefix}:{{{queue}}}:ulocks"

    def unique_expiry(self, queue: str) -> str:
        """Sorted set: unique-lock digests scored by their expiry instant (ms). Taking a lock
        drops a few expired entries (``lua/_unique.lua``), so stale locks do not pile up."""
        return f"{self.prefix}:{{{queue}}}:uexp"

    def processed(self, queue: str, day: str | None = None) -> str:
        """Counter of finished attempts; per UTC day (``YYYY-MM-DD``) or in total."""
        suffix = f":{day}" if day else ""
        return f"{self.prefix}:{{{queue}}}:processed{suffix}"

    def failed(self, queue: str, day: str | None = None) -> str:
        """Counter of failed attempts; per UTC day (``YYYY-MM-DD``) or in total."""
        suffix = f":{day}" if day else ""
        return f"{self.prefix}:{{{queue}}}:failed{suffix}"

    def queues(self) -> str:
        """Set of every queue name that ever held a task (an index; not part of transitions)."""
        return f"{self.prefix}:queues"

    def schedule_defs(self) -> str:
        """Hash: schedule name -> definition (JSON). ``~`` cannot start a queue name, so the
        hash tag of the schedule index keys is never a queue's."""
        return f"{self.prefix}:{{~schedules}}:defs"

    def schedule_due(self) -> str:
        """Sorted set: schedule name scored by its next tick (ms); the scheduler's index of
        what is due. The authority is the ``next`` field of the schedule's state."""
        return f"{self.prefix}:{{~schedules}}:due"

    def schedule_state(self, queue: str, name: str) -> str:
        """Hash beside the template's queue: next tick (``n``), last fired task id (``l``)."""
        return f"{self.prefix}:{{{queue}}}:schs:{name}"

    def schedule_fires(self, queue: str, name: str) -> str:
        """List beside the template's queue: the schedule's recent fires, newest first."""
        return f"{self.prefix}:{{{queue}}}:schf:{name}"

    def groups(self, queue: str) -> str:
        """Sorted set: the queue's AGGREGATING groups (group ids, see
        :func:`leasq_broker.groups.models.group_id`) scored by their size."""
        return f"{self.prefix}:{{{queue}}}:groups"

    def group_due(self, queue: str) -> str:
        """Sorted set: the queue's groups scored by their flush instant (ms)."""
        return f"{self.prefix}:{{{queue}}}:gdue"

    def group_members(self, queue: str, group_id: str) -> str:
        """List: one group's member task ids, in the order they joined."""
        return f"{self.prefix}:{{{queue}}}:gm:{group_id}"

    def group_info(self, queue: str, group_id: str) -> str:
        """Hash: one group's flushed task's base envelope and options."""
        return f"{self.prefix}:{{{queue}}}:gi:{group_id}"

    def group_times(self, queue: str) -> str:
        """Hash: every group's first and last join instants (ms) and its members' bytes,
        fields ``f:<group id>``, ``l:<group id>`` and ``b:<group id>``: one hash per queue, so
        that a batch reads and writes them for all its groups in one command each."""
        return f"{self.prefix}:{{{queue}}}:gtimes"

    def aggregating(self, queue: str) -> str:
        """Counter: tasks waiting in the queue's groups."""
        return f"{self.prefix}:{{{queue}}}:aggregating"

    def queue_settings(self, queue: str) -> str:
        """Hash: the queue's stored settings (absent fields take their defaults); the lease
        script also keeps there, beside the limits it reads on every call, the latest lease
        call's instant (``ll``, to the second) and whether the queue ever had a task with a
        concurrency key (``kx``)."""
        return f"{self.prefix}:{{{queue}}}:settings"

    def flow(self, queue: str) -> str:
        """Hash: the queue's flow-control state kept by the scripts: the rate limit's token
        bucket (``tk`` tokens at ``tt``, Redis ``TIME`` ms), the number of PENDING tasks
        waiting under concurrency keys (``kn``) and the sequences that order them in
        :meth:`key_pending` (``ks`` for pushes to the back, ``kh`` to the front)."""
        return f"{self.prefix}:{{{queue}}}:flow"

    def held(self, queue: str) -> str:
        """Set while some broker holds a Lease back for a limit of this queue; its TTL is the
        latest such poll's deadline. Ack, Nack and reclaim publish a wake-up while it exists."""
        return f"{self.prefix}:{{{queue}}}:held"

    def key_ring(self, queue: str) -> str:
        """List: the concurrency keys with PENDING tasks and a free slot, served round-robin
        (LPOP the next, RPUSH to the back)."""
        return f"{self.prefix}:{{{queue}}}:kring"

    def key_active(self, queue: str) -> str:
        """Hash: concurrency key -> tasks of that key ACTIVE now."""
        return f"{self.prefix}:{{{queue}}}:kact"

    def key_pending(self, queue: str) -> str:
        """Sorted set: the PENDING tasks of every concurrency key, all scored 0, members
        ``key \\0 <15 hex digits sequence> id``: a lex range over ``[key\\0`` .. ``(key\\1`` is
        one key's tasks in lease order (see ``lua/_flow.lua``). One set per queue, so that a
        script that learns which key to serve only inside itself still names no key."""
        return f"{self.prefix}:{{{queue}}}:kpend"

    def key_position(self, queue: str) -> str:
        """Hash: task id -> its member in :meth:`key_pending` (to remove a given task)."""
        return f"{self.prefix}:{{{queue}}}:kpos"

    def layout_version(self) -> str:
        """String: the version of the storage layout (``"2"``: task records in per-queue
        hashes); a broker that finds an older one (or none) migrates the data at start."""
        return f"{self.prefix}:{{~meta}}:layout"

    def legacy_task_pattern(self, queue: str) -> str:
        """SCAN pattern of layout 1's per-task hashes (read only by the migration)."""
        return f"{self.prefix}:{{{queue}}}:t:*"

    def legacy_unique_pattern(self, queue: str) -> str:
        """SCAN pattern of layout 1's string unique locks (read only by the migration)."""
        return f"{self.prefix}:{{{queue}}}:u:*"

    def legacy_key_pending_pattern(self, queue: str) -> str:
        """SCAN pattern of layout 1's per-key PENDING lists (read only by the migration)."""
        return f"{self.prefix}:{{{queue}}}:kp:*"

    def grouped_queues(self) -> str:
        """Set: queues that may hold groups (an index for the aggregator; ``~`` keeps its hash
        tag apart from every queue's)."""
        return f"{self.prefix}:{{~groups}}:queues"

    def due_forward(self, queue: str) -> str:
        """Sorted set: queues scored by the earliest instant (ms) a SCHEDULED or RETRY task of
        theirs falls due: the forwarder's index of what is due (see :meth:`due_version`)."""
        return self.due_index("forward", queue)

    def due_reclaim(self, queue: str) -> str:
        """Sorted set: queues scored by their earliest lease expiry (ms): the reclaimer's."""
        return self.due_index("reclaim", queue)

    def due_janitor(self, queue: str) -> str:
        """Sorted set: queues scored by when the janitor should look at them (ms): their
        earliest completed expiry, or an archive that may have outgrown its limits."""
        return self.due_index("janitor", queue)

    def due_index(self, kind: str, queue: str) -> str:
        """The due index of ``kind`` that files ``queue``.

        Scripts that add work for a background loop file the queue in that loop's index in
        the same script (``ZADD ... LT``, so the index keeps each queue's earliest instant),
        and the loop's own script re-files the queue at its true next instant: every key a
        script touches is in ``KEYS``, and one Redis runs it atomically. On one Redis there is
        one index per kind for the whole deployment. Under Redis Cluster a script may only
        touch keys of one slot, so there is one index per kind and slot, its hash tag mapping
        to ``queue``'s slot (:func:`leasq_broker.cluster_slots.slot_tag`); the loops read the
        indexes of the slots listed in :meth:`due_slots`.
        """
        if not self.cluster:
            return f"{self.prefix}:{{~due}}:{kind}"
        return self.due_in_slot(kind, self.queue_slot(queue))

    def due_in_slot(self, kind: str, slot: int) -> str:
        """Under Cluster: the due index of ``kind`` for the queues of ``slot``."""
        return f"{self.prefix}:{{{slot_tag(slot)}}}:due:{kind}"

    def due_slots(self) -> str:
        """Set (Cluster only): the slots that hold a known queue, as decimal numbers: the
        slots whose due indexes the loops read. Written with the index of known queues."""
        return f"{self.prefix}:{{~due}}:slots"

    def queue_slot(self, queue: str) -> int:
        """The Cluster slot of every key of ``queue``."""
        return slot_of(self.pending(queue))

    def register_queues(self, queues: Iterable[str]) -> list[tuple[str, ...]]:
        """The idempotent commands that make queues known: the index of known queues and,
        under Cluster, the slots whose due indexes the loops read. Sent before (or in the same
        pipeline ahead of) the first write to a queue, so the loops never miss its work."""
        names = tuple(dict.fromkeys(queues))
        if not names:
            return []
        commands: list[tuple[str, ...]] = [("SADD", self.queues(), *names)]
        if self.cluster:
            slots = dict.fromkeys(str(self.queue_slot(name)) for name in names)
            commands.append(("SADD", self.due_slots(), *slots))
        return commands

    def due_version(self) -> str:
        """String: the version of the due indexes' layout; a broker that finds another value
        (or none: data from before the indexes) builds them once from the known queues."""
        return f"{self.prefix}:{{~due}}:version"

    def notify_channel(self) -> str:
        """Pub/sub channel: a message (the queue name) wakes brokers long-polling that queue."""
        return f"{self.prefix}:notify"
