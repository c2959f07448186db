"""Task records as stored in layout 2: one hash per queue of MessagePack maps.

``lua/_task.lua`` writes a task's fields (every value a string) as a map packed with Redis'
``cmsgpack`` into the queue's ``tasks`` hash, and its envelope apart into the ``env`` hash.
This module is the Python side of that codec: readers get the same ``dict[bytes, bytes]`` that
``HGETALL`` of a per-task hash gave (with ``b"b"`` the envelope when they ask for it), so they
change little.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgpack  # type: ignore[import-untyped]
from redis.asyncio import Redis

from leasq_broker.keys import Keys

Record = dict[bytes, bytes]


def record_fields(raw: bytes) -> Record:
    """A packed record's fields. An empty table packs as an empty array in ``cmsgpack``: no
    fields."""
    fields = msgpack.unpackb(raw, raw=True)
    if not isinstance(fields, dict):
        return {}
    return {_bytes(k): _bytes(v) for k, v in fields.items()}


def pack_record(fields: dict[bytes, bytes] | dict[str, str | bytes]) -> bytes:
    """A record as ``_task.lua`` stores it (used by the migration and tests)."""
    packed: bytes = msgpack.packb({_bytes(k): _bytes(v) for k, v in fields.items()},
                                  use_bin_type=False)
    return packed


def with_envelope(raw: bytes | None, envelope: bytes | None) -> Record:
    """A record's fields plus its envelope as ``b"b"`` (when there is one); ``{}`` when the
    task is absent."""
    if raw is None:
        return {}
    fields = record_fields(raw)
    if envelope is not None:
        fields[b"b"] = envelope
    return fields


async def read_records(redis: Redis, keys: Keys, queue: str, ids: Sequence[str], *,
                       envelopes: bool = True) -> list[Record]:
    """The records of ``ids`` in one round trip (``{}`` for an absent task), each with its
    envelope as ``b"b"`` when ``envelopes``."""
    if not ids:
        return []
    pipe = redis.pipeline(transaction=False)
    pipe.hmget(keys.tasks(queue), list(ids))
    if envelopes:
        pipe.hmget(keys.envelopes(queue), list(ids))
    replies = await pipe.execute()
    envs = replies[1] if envelopes else [None] * len(ids)
    return [with_envelope(raw, env) for raw, env in zip(replies[0], envs, strict=True)]


async def read_record(redis: Redis, keys: Keys, queue: str, task_id: str, *,
                      envelope: bool = True) -> Record:
    """One task's record (``{}`` when absent), with its envelope when ``envelope``."""
    return (await read_records(redis, keys, queue, [task_id], envelopes=envelope))[0]


def _bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return str(value).encode()
