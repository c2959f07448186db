"""A queue's daily processed/failed counters, read in one round trip.

ack.lua, nack.lua, lease.lua and reclaim.lua count finished and failed attempts per UTC day
(``processed:YYYY-MM-DD``, kept 90 days) and in total; this reads them back.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import Redis

from leasq_broker.keys import Keys
from leasq_broker.operations.models import DailyCounts, DayCount, QueueHistory


def utc_days(now_ms: int, days: int) -> list[str]:
    """The last ``days`` UTC days (``YYYY-MM-DD``), today first."""
    today = datetime.fromtimestamp(now_ms / 1000, UTC).date()
    return [(today - timedelta(days=n)).isoformat() for n in range(days)]


async def read_history(redis: Redis, keys: Keys, queue: str, days: int, now_ms: int
                       ) -> QueueHistory:
    """Every day's counters and the totals in one MGET (all keys share the queue's slot)."""
    dates = utc_days(now_ms, days)
    return _history(dates, await redis.mget(_history_keys(keys, queue, dates)))


async def read_daily(redis: Redis, keys: Keys, queues: Sequence[str], days: int,
                     now_ms: int) -> DailyCounts:
    """The daily counters of many queues in one pipelined round trip (one MGET per queue, each
    within its queue's slot): what an overview of every queue draws its sparklines and daily
    charts from. Lean on purpose (no totals, plain lists): with 1,000 queues the cost is the
    client's packing and parsing of every key and value."""
    dates = utc_days(now_ms, days)
    if not queues:
        return DailyCounts(dates, [], [])
    pipe = redis.pipeline(transaction=False)
    for queue in queues:
        pipe.mget([name for day in dates
                   for name in (keys.processed(queue, day), keys.failed(queue, day))])
    processed: list[list[int]] = []
    failed: list[list[int]] = []
    for raw in await pipe.execute():
        values = [int(v) if v else 0 for v in raw]
        processed.append(values[0::2])
        failed.append(values[1::2])
    return DailyCounts(dates, processed, failed)


def _history_keys(keys: Keys, queue: str, dates: list[str]) -> list[str]:
    names = [keys.processed(queue), keys.failed(queue)]
    for day in dates:
        names += [keys.processed(queue, day), keys.failed(queue, day)]
    return names


def _history(dates: list[str], raw: Sequence[Any]) -> QueueHistory:
    values = [int(v or 0) for v in raw]
    return QueueHistory(
        days=[DayCount(day, values[2 + 2 * n], values[3 + 2 * n]) for n, day in enumerate(dates)],
        processed_total=values[0],
        failed_total=values[1],
    )
