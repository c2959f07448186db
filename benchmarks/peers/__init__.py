"""The systems the comparison runs, with their worker commands and stated settings.

Every worker is one process (plus the pool children a system forks by default) logging at
WARNING, on its system's recommended Redis setup at defaults. Concurrency is never below a
system's default: 64 for Leasq's and arq's asyncio workers (arq's default is 10), taskiq's
default of 100, 8 threads where the model is threads (Dramatiq's default; Huey's is 1),
Celery's prefork pool at 8 children (its default is one per core), RQ one job at a time (its
design; SimpleWorker, which skips the fork per job of the default worker).
"""

from __future__ import annotations

from peers.base import PeerInfo

ASYNC_CONCURRENCY = 64
THREADS = 8

LEASQ = PeerInfo(
    name="Leasq",
    module="peers.leasq_peer",
    distributions=("leasq", "grpcio", "redis"),
    worker=f"leasq worker, asyncio, concurrency {ASYNC_CONCURRENCY}, lease 15 s",
    single_api="AsyncClient.enqueue, 64 in flight",
    bulk_api="AsyncClient.enqueue_many of 5,000 (1,000 per RPC), 4 calls in flight",
    recovery="lease expiry: 15 s lease renewed every 5 s; reclaimed at the lease deadline",
    worker_argv=(
        "{python}",
        "-m",
        "leasq_worker",
        "peers.leasq_peer:registry",
        "--broker",
        "{broker}",
        "--queue",
        "bench",
        "--concurrency",
        str(ASYNC_CONCURRENCY),
        "--log-level",
        "warning",
    ),
    needs_broker=True,
)
CELERY = PeerInfo(
    name="Celery",
    module="peers.celery_peer",
    distributions=("celery", "kombu", "redis"),
    worker=f"celery worker, prefork pool, concurrency {THREADS}",
    single_api="task.delay(), sequential",
    bulk_api=None,
    recovery="acks on receipt by default (task_acks_late=False): the task is lost; with "
    "acks_late the Redis transport redelivers after visibility_timeout (1 h)",
    worker_argv=(
        "{python}",
        "-m",
        "celery",
        "-A",
        "peers.celery_peer",
        "worker",
        "--pool",
        "prefork",
        "--concurrency",
        str(THREADS),
        "--loglevel",
        "WARNING",
    ),
)
RQ = PeerInfo(
    name="RQ",
    module="peers.rq_peer",
    distributions=("rq", "redis"),
    worker="rq worker, SimpleWorker (no fork per job), one job at a time",
    single_api="Queue.enqueue, sequential",
    bulk_api="Queue.enqueue_many (one pipeline)",
    recovery="the abandoned job goes to FailedJobRegistry (AbandonedJobError) when its "
    "registry entry expires; re-run only if the job was given Retry",
    worker_argv=(
        "{python}",
        "-m",
        "rq.cli",
        "worker",
        "--url",
        "{redis}",
        "--worker-class",
        "rq.worker.SimpleWorker",
        "--logging_level",
        "WARNING",
        "bench",
    ),
)
DRAMATIQ = PeerInfo(
    name="Dramatiq",
    module="peers.dramatiq_peer",
    distributions=("dramatiq", "redis"),
    worker=f"dramatiq, 1 process x {THREADS} threads (default threads)",
    single_api="actor.send(), sequential",
    bulk_api=None,
    recovery="dead worker's unacked messages are requeued by a maintenance pass after "
    "heartbeat_timeout (60 s); a pass runs on 0.1% of broker calls",
    worker_argv=(
        "{python}",
        "-m",
        "dramatiq",
        "peers.dramatiq_peer",
        "--processes",
        "1",
        "--threads",
        str(THREADS),
    ),
)
ARQ = PeerInfo(
    name="arq",
    module="peers.arq_peer",
    distributions=("arq", "redis"),
    worker=f"arq worker, asyncio, max_jobs {ASYNC_CONCURRENCY}",
    single_api="ArqRedis.enqueue_job, 64 in flight",
    bulk_api=None,
    recovery="re-run once the in-progress key expires: job_timeout (300 s) + 10 s",
    worker_argv=(
        "{python}",
        "-m",
        "arq",
        "peers.arq_peer.WorkerSettings",
        "--custom-log-dict",
        "peers.arq_peer.LOG_CONFIG",
    ),
    python_env=".venv-bench-arq",
)
TASKIQ = PeerInfo(
    name="taskiq",
    module="peers.taskiq_peer",
    distributions=("taskiq", "taskiq-redis", "redis"),
    worker="taskiq worker, 1 process, RedisStreamBroker, max-async-tasks 100 (default)",
    single_api="task.kiq(), 64 in flight",
    bulk_api=None,
    recovery="XAUTOCLAIM of messages idle > idle_timeout (10 min), tried only after a read "
    "that returned new messages",
    worker_argv=(
        "{python}",
        "-m",
        "taskiq",
        "worker",
        "peers.taskiq_peer:broker",
        "--workers",
        "1",
        "--log-level",
        "WARNING",
    ),
)
HUEY = PeerInfo(
    name="Huey",
    module="peers.huey_peer",
    distributions=("huey", "redis"),
    worker=f"huey_consumer, {THREADS} worker threads",
    single_api="task(), sequential",
    bulk_api=None,
    recovery="none: a dequeued task lives only in the consumer; kill -9 loses it",
    worker_argv=(
        "{python}",
        "-m",
        "huey.bin.huey_consumer",
        "peers.huey_peer.huey",
        "--workers",
        str(THREADS),
        "--worker-type",
        "thread",
        "--quiet",
    ),
)

SYSTEMS: dict[str, PeerInfo] = {
    peer.name.lower(): peer for peer in (LEASQ, CELERY, RQ, DRAMATIQ, ARQ, TASKIQ, HUEY)
}
