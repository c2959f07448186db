"""Bulk operations over a big state: how long RunAllTasks, ArchiveAllTasks and DeleteAllTasks
take over N tasks, and the longest single Redis command while they run (the promise: chunks of
at most 1,000 tasks, so Redis is never blocked for more than a few milliseconds).

The N tasks are written straight into a private Redis as the archive transition leaves them
(task hash with a real envelope, ``s=archived``, ``aa``, the archived index), by a Lua script
10,000 at a time, which takes seconds instead of the minutes N enqueues plus an archive would.
Per phase: Redis' latency histogram of EVALSHA (``LATENCY HISTOGRAM``, after ``CONFIG
RESETSTAT``: the bulk chunks, and a few calls of the broker's loops) gives the calls, their
mean and their median and 99th percentile (as power-of-two bucket bounds); the slow log
(commands over 1 ms: a threshold of 0 also logs the commands scripts run, millions of them)
gives the longest command. Wall-clock durations stretch when other processes take the cores,
so the Redis process's CPU time is shown too.

    .venv/bin/python benchmarks/bulk_bench.py               # 1,000,000 tasks
    .venv/bin/python benchmarks/bulk_bench.py --tasks 200000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc.aio
import redis.asyncio
from harness import running_stack

from leasq.v1 import inspect_service_pb2 as pb
from leasq.v1 import inspect_service_pb2_grpc as pb_grpc
from leasq.v1 import task_pb2
from leasq_broker.keys import Keys

QUEUE = "bulk"
BUILD_BATCH = 10_000
# Commands slower than this (us) are logged.
SLOW_US = 1000
# Writes tasks i = ARGV[3] .. ARGV[3] + ARGV[4] - 1 as ARCHIVED; every second one carries
# the error type 'Even' (for the filtered run). The envelope is the LeasedTask bytes with the
# id field (1) spliced in front of the shared rest (protobuf fields may come in any order).
# KEYS[1] archived zset, KEYS[2] task records hash, KEYS[3] envelopes hash (layout 2: a record
# is a cmsgpack map of string fields, see lua/_task.lua).
_BUILD = """
local now, rest, first, n = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local members = {}
for i = first, first + n - 1 do
  local id = string.format('b-%09d', i)
  local et = 'Odd'
  if i % 2 == 0 then et = 'Even' end
  redis.call('HSET', KEYS[2], id, cmsgpack.pack({mr = '3', na = now, s = 'archived', aa = now,
    r = '3', e = 'boom', et = et, ef = now}))
  redis.call('HSET', KEYS[3], id, '\\10' .. string.char(#id) .. id .. rest)
  members[#members + 1] = now
  members[#members + 1] = id
  if #members >= 1000 then
    redis.call('ZADD', KEYS[1], unpack(members))
    members = {}
  end
end
if #members > 0 then redis.call('ZADD', KEYS[1], unpack(members)) end
return n
"""


def envelope_rest(now_ms: int) -> bytes:
    """The envelope of a bench task without its id."""
    task = task_pb2.LeasedTask(queue=QUEUE, type="bench:noop", payload=b'{"n":1}', max_retry=3)
    task.enqueued_at.FromMilliseconds(now_ms)
    return task.SerializeToString()


async def build(client: redis.asyncio.Redis, keys: Keys, n: int) -> float:
    """Write n ARCHIVED tasks; seconds taken."""
    started = time.perf_counter()
    now = int(time.time() * 1000)
    rest = envelope_rest(now)
    script = client.register_script(_BUILD)
    for first in range(0, n, BUILD_BATCH):
        await script(keys=[keys.archived(QUEUE), keys.tasks(QUEUE), keys.envelopes(QUEUE)],
                     args=[now, rest, first, min(BUILD_BATCH, n - first)])
    await client.sadd(keys.queues(), QUEUE)
    return time.perf_counter() - started


async def longest_command(client: redis.asyncio.Redis) -> tuple[int, str, int]:
    """(longest duration us, its command, commands logged) since the last SLOWLOG RESET."""
    entries: list[Any] = await client.execute_command("SLOWLOG", "GET", "-1")
    longest, name = 0, ""
    for entry in entries:
        duration, args = int(entry[2]), entry[3]
        if duration > longest and str(args[0], "ascii", "replace").upper() != "SLOWLOG":
            longest = duration
            name = " ".join(a.decode(errors="replace")[:24] if isinstance(a, bytes) else str(a)
                            for a in args[:3])
    return longest, name, len(entries)


async def script_stats(client: redis.asyncio.Redis) -> tuple[int, float, int, int]:
    """(calls, mean us, median us, p99 us) of EVALSHA since the last CONFIG RESETSTAT; the
    percentiles are the upper bounds of Redis' power-of-two latency buckets."""
    stats = (await client.info("commandstats")).get("cmdstat_evalsha", {})
    calls, usec = int(stats.get("calls", 0)), int(stats.get("usec", 0))
    reply: dict[bytes, Any] = await client.execute_command("LATENCY", "HISTOGRAM", "evalsha")
    buckets = sorted((reply.get(b"evalsha") or {}).get(b"histogram_usec", {}).items())

    def percentile(share: float) -> int:
        for bound, cumulative in buckets:
            if cumulative >= share * calls:
                return int(bound)
        return 0

    return calls, usec / max(1, calls), percentile(0.5), percentile(0.99)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a local process: what Redis spent, whatever else runs on
    the machine (wall-clock durations stretch when other processes take the cores)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


Row = tuple[str, int, float, float, int, float, int, int, int, str, int]


async def phase(client: redis.asyncio.Redis, what: str,
                call: Callable[[], Awaitable[int]]) -> Row:
    await client.execute_command("SLOWLOG", "RESET")
    await client.execute_command("CONFIG", "RESETSTAT")
    await client.config_set("slowlog-log-slower-than", SLOW_US)
    pid = int((await client.info("server"))["process_id"])
    cpu = cpu_seconds(pid)
    started = time.perf_counter()
    moved = await call()
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(pid) - cpu
    calls, mean, median, p99 = await script_stats(client)
    longest, name, over = await longest_command(client)
    return what, moved, elapsed, cpu, calls, mean, median, p99, longest, name, over


async def main(n: int, only_run: bool) -> None:
    keys = Keys()
    load_before = os.getloadavg()
    with running_stack("--archive-max-size", str(10 * n)) as stack:
        client = redis.asyncio.Redis.from_url(stack.redis_url)
        built = await build(client, keys, n)
        await client.config_set("slowlog-max-len", 1_000_000)
        print(f"built {n:,} archived tasks in {built:.1f} s; "
              f"used_memory {(await client.info('memory'))['used_memory_human']}")
        archived, pending = task_pb2.TASK_STATE_ARCHIVED, task_pb2.TASK_STATE_PENDING
        rows: list[Row] = []
        async with grpc.aio.insecure_channel(stack.address) as channel:
            stub = pb_grpc.InspectServiceStub(channel)

            async def run(**filter_fields: Any) -> int:
                request = pb.RunAllTasksRequest(queue=QUEUE, state=archived,
                                                filter=pb.TaskFilter(**filter_fields))
                return int((await stub.RunAllTasks(request, timeout=3600)).affected)

            async def archive(**filter_fields: Any) -> int:
                request = pb.ArchiveAllTasksRequest(queue=QUEUE, state=pending,
                                                    filter=pb.TaskFilter(**filter_fields))
                return int((await stub.ArchiveAllTasks(request, timeout=3600)).affected)

            async def delete(state: task_pb2.TaskState.ValueType) -> int:
                request = pb.DeleteAllTasksRequest(queue=QUEUE, state=state)
                return int((await stub.DeleteAllTasks(request, timeout=3600)).affected)

            half = n // 2 + n % 2  # tasks with an even number
            rows.append(await phase(client, "RunAllTasks ARCHIVED", run))
            assert await client.llen(keys.pending(QUEUE)) == n
            if not only_run:
                rows.append(await phase(client, "ArchiveAllTasks PENDING error_type=Even (half)",
                                        lambda: archive(error_type="Even")))
                assert await client.zcard(keys.archived(QUEUE)) == half
                rows.append(await phase(client, "ArchiveAllTasks PENDING", archive))
                assert await client.zcard(keys.archived(QUEUE)) == n
                rows.append(await phase(client, "RunAllTasks ARCHIVED error_type=Even (half)",
                                        lambda: run(error_type="Even")))
                assert await client.llen(keys.pending(QUEUE)) == half
                rows.append(await phase(client, "DeleteAllTasks PENDING",
                                        lambda: delete(pending)))
                rows.append(await phase(client, "DeleteAllTasks ARCHIVED",
                                        lambda: delete(archived)))
                assert await client.dbsize() <= 10  # only the queue's fixed keys are left
        await client.aclose()
    print(f"load average before/after: {load_before} / {os.getloadavg()}")
    print("| operation | tasks moved | seconds | tasks/s | Redis CPU s | script calls | mean / "
          "median / p99 call | calls over 1 ms | longest Redis command |\n"
          "|---|---|---|---|---|---|---|---|---|")
    for (what, moved, elapsed, cpu, calls, mean, median, p99, longest, name,
         over) in rows:
        print(f"| {what} | {moved:,} | {elapsed:.1f} | {moved / elapsed:,.0f} | {cpu:.1f} | "
              f"{calls:,} | {mean / 1000:.1f} / <={median / 1000:.1f} / <={p99 / 1000:.1f} ms | "
              f"{over:,} | {longest / 1000:.1f} ms ({name}) |")

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--only-run", action="store_true",
                        help="time RunAllTasks over the archived tasks only")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.tasks, arguments.only_run))
