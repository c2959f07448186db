"""Who may call the operator methods (a reader reads, only an admin moves or deletes), and
GetServerInfo's fields."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from broker_process import BrokerFactory

from leasq_broker.edge.tokens import hash_token
from leasq_sdk import AsyncClient, Client, PermissionDenied

READER, ADMIN = "reader-secret-0123456789", "admin-secret-0123456789"

READS: dict[str, Callable[[Client], Any]] = {
    "GetQueueHistory": lambda c: c.queue_history("q"),
    "SearchTasks": lambda c: c.search_tasks("q", "archived", type="t:x"),
    "GetServerInfo": lambda c: c.server_info(),
    "ListQueues(include_stats)": lambda c: c.list_queues(include_stats=True),
}
WRITES: dict[str, Callable[[Client], Any]] = {
    "RunAllTasks": lambda c: c.run_all("q", "archived"),
    "ArchiveAllTasks": lambda c: c.archive_all("q", "pending"),
    "DeleteAllTasks": lambda c: c.delete_all("q", "archived"),
    "DeleteQueue": lambda c: c.delete_queue("q", force=True),
}


def test_a_reader_reads_but_only_an_admin_moves_or_deletes(
    broker_factory: BrokerFactory, tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens.toml"
    tokens.write_text("".join(
        f'[[token]]\nname = "{name}"\nsha256 = "{hash_token(secret)}"\nrole = "{name}"\n\n'
        for name, secret in (("reader", READER), ("admin", ADMIN))))
    broker = broker_factory(auth_tokens_file=tokens)
    with Client(broker.address, token=ADMIN, timeout=10) as admin, \
            Client(broker.address, token=READER, timeout=10) as reader:
        admin.enqueue("t:x", b"", queue="q")
        for call in READS.values():
            call(reader)  # allowed
        for name, call in WRITES.items():
            with pytest.raises(PermissionDenied):
                call(reader)
            assert call(admin) >= 0, name
        assert admin.list_queues() == []  # the admin's DeleteQueue went through


def test_server_info_reports_the_broker_and_its_redis(client: Client, redis_mode: str) -> None:
    info = client.server_info()
    assert info.version == "0.1.0"
    now = datetime.now(UTC)
    assert now - timedelta(minutes=10) < info.started_at <= now
    redis = info.redis
    assert redis.version.count(".") == 2 and redis.mode == redis_mode
    assert redis.used_memory_bytes > 0 and redis.max_memory_bytes >= 0
    assert redis.connected_clients >= 1
    assert redis.aof_enabled is False  # the tests' Redis runs --appendonly no
    assert redis.aof_fsync in ("always", "everysec", "no")
    assert redis.uptime >= timedelta(0)


async def test_the_async_client_has_every_operator_call(
    aclient: AsyncClient, redis_mode: str
) -> None:
    await aclient.enqueue("t:x", b"hello", queue="aq", task_id="one", process_in=3600)
    assert (await aclient.server_info()).redis.mode == redis_mode
    assert len((await aclient.queue_history("aq", days=3)).days) == 3
    page = await aclient.search_tasks("aq", "scheduled", payload_contains="ell")
    assert [t.id for t in page.tasks] == ["one"]
    assert await aclient.run_all("aq", "scheduled") == 1
    assert await aclient.archive_all("aq", "pending") == 1
    assert await aclient.delete_all("aq", "archived") == 1
    listed = await aclient.list_queues(include_stats=True)
    assert [(q.queue, q.stats.archived if q.stats else None) for q in listed] == [("aq", 0)]
    assert await aclient.delete_queue("aq") == 0
