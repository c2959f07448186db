"""The broker's own Prometheus metrics (counters and histograms updated as work happens).

They live in prometheus-client's default registry, next to its process and Python collectors,
so that ``/metrics`` shows them all. Per-label children are looked up once and kept
(:func:`functools.cache` over ``labels``): a hot-path update is then one locked add, about
0.2 us, instead of the label tuple building and dictionary lookup ``labels()`` does per call.
Queue sizes are not here: they are read from Redis at scrape time (:mod:`.queue_stats`).
"""

from __future__ import annotations

import functools
from typing import Any

from prometheus_client import Counter, Histogram

# Seconds; covers a sub-millisecond Enqueue up to a 60 s long-poll Lease.
RPC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
               10.0, 30.0, 60.0)  # fmt: skip
REDIS_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)

RPC_REQUESTS = Counter(
    "leasq_rpc_requests", "gRPC calls answered, by service, method and status code",
    ["service", "method", "code"],
)  # fmt: skip
RPC_STREAM_MESSAGES = Counter(
    "leasq_rpc_stream_messages", "Messages of streaming calls answered (EnqueueStream: one per "
    "task; SettleStream: one per Ack or Nack), by service, method and the answer's status "
    "code", ["service", "method", "code"],
)  # fmt: skip
RPC_DURATION = Histogram(
    "leasq_rpc_duration_seconds", "Time from a call reaching its handler to its answer "
    "(a long-poll Lease includes its wait)", ["service", "method"], buckets=RPC_BUCKETS,
)  # fmt: skip
LEASES_GRANTED = Counter("leasq_leases_granted", "Tasks leased to workers", ["queue"])
LEASES_RECLAIMED = Counter(
    "leasq_leases_reclaimed", "Expired leases whose task went back to pending", ["queue"],
)  # fmt: skip
POISON_ARCHIVED = Counter(
    "leasq_poison_tasks_archived", "Tasks archived when their lease expired: the lease-lost "
    "cap reached (poison), or the deadline passed meanwhile", ["queue"],
)  # fmt: skip
ENQUEUE_BATCH_SIZE = Histogram(
    "leasq_enqueue_batch_size", "Tasks per enqueue round trip to Redis: single Enqueue calls "
    "that arrived together and shared a trip (kind=coalesced), or one EnqueueBatch call "
    "(kind=batch)",
    ["kind"], buckets=SIZE_BUCKETS,
)  # fmt: skip
REDIS_ROUNDTRIP = Histogram(
    "leasq_redis_roundtrip_seconds", "Time of the broker's hot-path Redis round trips, by "
    "operation (enqueue, lease, settle)", ["op"], buckets=REDIS_BUCKETS,
)  # fmt: skip
LOOP_LAG = Histogram(
    "leasq_loop_lag_seconds", "How late each background loop ran compared to when it was due",
    ["loop"], buckets=LAG_BUCKETS,
)  # fmt: skip

_granted = functools.cache(LEASES_GRANTED.labels)
_reclaimed = functools.cache(LEASES_RECLAIMED.labels)
_poison = functools.cache(POISON_ARCHIVED.labels)
_batch = functools.cache(ENQUEUE_BATCH_SIZE.labels)
_redis = functools.cache(REDIS_ROUNDTRIP.labels)
_lag = functools.cache(LOOP_LAG.labels)


def leases_granted(grants: Any) -> None:
    """Count granted leases (objects with a ``queue``) per queue."""
    for grant in grants:
        _granted(grant.queue).inc()


def leases_reclaimed(queue: str, returned: int, archived: int) -> None:
    """Count one queue's reclaim: leases returned to pending, tasks archived as poison."""
    if returned:
        _reclaimed(queue).inc(returned)
    if archived:
        _poison(queue).inc(archived)


def enqueue_batch(kind: str, size: int) -> None:
    """One enqueue round trip of ``size`` tasks."""
    _batch(kind).observe(size)


def redis_roundtrip(op: str, seconds: float) -> None:
    """One hot-path Redis round trip of ``op``."""
    _redis(op).observe(seconds)


def loop_lag(loop: str, seconds: float) -> None:
    """A background loop ran ``seconds`` after it was due."""
    _lag(loop).observe(seconds)
