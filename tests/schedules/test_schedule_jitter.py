"""Jitter: each fired task is delayed by a random span in [0, jitter] after its tick (README:
"each fire is delayed by a random span up to jitter"), on a real Redis with a manual clock."""

from __future__ import annotations

from redis.asyncio import Redis

from leasq_broker.clock import ManualClock
from leasq_broker.schedules.models import ScheduleDef, Template
from leasq_broker.schedules.service import Schedules

SECOND = 1000
JITTER = 500
TICKS = 40


async def test_each_fire_is_delayed_by_a_random_span_up_to_the_jitter(
    schedules: Schedules, clock: ManualClock, redis_client: Redis
) -> None:
    template = Template("t:tick", b"{}", queue="q")
    view, _ = await schedules.upsert(ScheduleDef("s", "@every 1s", template, jitter_ms=JITTER))
    first = view.next_fire_ms or 0
    clock.advance(first - clock.now_ms())
    for _ in range(TICKS):
        while (await schedules.fire_due()).more_due:
            pass
        clock.advance(SECOND)
    due = dict(await redis_client.zrange("leasq:{q}:scheduled", 0, -1, withscores=True))
    pending = await redis_client.lrange("leasq:{q}:pending", 0, -1)
    delays = {int(task_id.decode().rsplit(":", 1)[1]): 0 for task_id in pending}
    delays |= {int(task_id.decode().rsplit(":", 1)[1]): int(at) - int(task_id.decode()
               .rsplit(":", 1)[1]) for task_id, at in due.items()}  # fmt: skip
    assert sorted(delays) == [first + n * SECOND for n in range(TICKS)]
    assert all(0 <= delay <= JITTER for delay in delays.values()), delays
    # Random, not fixed: 40 draws from [0, 500] ms spread over most of the range.
    assert max(delays.values()) - min(delays.values()) > JITTER / 2, delays
