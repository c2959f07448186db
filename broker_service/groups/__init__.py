"""Group aggregation: tasks enqueued with a group wait (AGGREGATING) until their group is
flushed into one PENDING task that carries every member.

``models`` holds settings and group ids, ``calls`` the script calls the enqueue path shares,
``store`` the Redis reads and flush/delete transitions, ``service`` the use case behind the
Inspect calls, ``loop`` the aggregator that flushes groups when they fall due.
"""
