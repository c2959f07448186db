"""A queue's daily processed/failed counters, read in one round trip.

ack.lua, nack.lua, lease.lua and reclaim.lua count finished and failed attempts per UTC day
(``processed:YYYY-MM-DD``, kept 90 days) and in total; this reads them back.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from leasq_broker.keys import Keys
from leasq_broker.operations.models import DayCount, QueueHistory


def utc_days(now_ms: int, days: int) -> list[str]:
    """The last ``days`` UTC days (``YYYY-MM-DD``), today first."""
    today = datetime.fromtimestamp(now_ms / 1000, UTC).date()
    return [(today - timedelta(days=n)).isoformat() for n in range(days)]


async def read_history(redis: Redis, keys: Keys, queue: str, days: int, now_ms: int
                       ) -> QueueHistory:
    """Every day's counters and the totals in one MGET (all keys share the queue's slot)."""
    dates = utc_days(now_ms, days)
    names = [keys.processed(queue), keys.failed(queue)]
    for day in dates:
        names += [keys.processed(queue, day), keys.failed(queue, day)]
    values = [int(v or 0) for v in await redis.mget(names)]
    return QueueHistory(
        days=[DayCount(day, values[2 + 2 * n], values[3 + 2 * n]) for n, day in enumerate(dates)],
        processed_total=values[0],
        failed_total=values[1],
    )
