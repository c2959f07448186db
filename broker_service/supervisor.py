"""``leasq serve --processes N``: one parent process that runs N broker processes on one port.

A ``grpc.aio`` broker is one Python process on one core (one event loop, one GIL). To use every
core of a machine, the parent starts N children, each ``python -m leasq_broker serve`` with the
same flags plus a hidden ``--process-index I``. Every child binds the same gRPC port (and the
same HTTP port) with ``SO_REUSEPORT``, so the kernel spreads incoming connections over them;
they share the Redis, which holds all state, exactly as several brokers behind one address do.

The parent stays small: it starts no gRPC server and serves no call itself.
- a port 0 is turned into a concrete free port first (held with ``SO_REUSEPORT`` until every
  child serves), since children binding port 0 on their own would get different ports;
- with no ``--redis-url``, the parent starts the embedded Redis once, passes its URL to the
  children and stops it after they have all exited;
- ``--ready-file`` is written by the parent once every child has written its own;
- SIGTERM/SIGINT/SIGHUP are forwarded to every child (children run in their own session, so a
  Ctrl-C at a terminal reaches them once, through the parent); a second SIGTERM/SIGINT cuts
  their grace period short as it does for one broker; the parent exits 0 when all children
  did;
- a child that exits on its own after the group was serving is restarted after a bounded
  backoff, with a warning, without touching the others; a child that fails before the group
  serves (a bad flag, a taken port) stops the whole group with exit code 1;
- children get SIGTERM from the OS if the parent is killed (Linux ``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from leasq_broker.config import BrokerConfig
from leasq_broker.embedded_redis import EmbeddedRedis, EmbeddedRedisError, _parent_death_signal
from leasq_broker.logs import configure_logging

log = structlog.get_logger(__name__)

READY_POLL_SECONDS = 0.05
# Restart delays of a child that keeps dying: 0.5 s, 1 s, 2 s, ... up to 10 s; a child that
# ran this long before dying starts the series again.
BACKOFF_FIRST_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 10.0
BACKOFF_RESET_SECONDS = 30.0
# A child still running this long after the grace period is killed (SIGKILL).
STOP_MARGIN_SECONDS = 30.0
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def restart_delay(failures: int) -> float:
    """Seconds before restarting a child that died ``failures`` times in a row (from 0)."""
    return float(min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** min(failures, 16)))


def process_count(text: str) -> int:
    """``--processes`` value: a positive integer, or ``auto`` for the CPUs this process may use."""
    if text.strip().lower() == "auto":
        return (
            len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else (os.cpu_count() or 1)
        )
    value = int(text)
    if value <= 0:
        raise ValueError(f"must be a positive integer or auto, got {text!r}")
    return value


def mark_child(index: int) -> None:
    """In a child: every log line carries ``process=<index>``, and /metrics shows
    ``leasq_broker_process_info{index, pid}`` (which process answered a scrape)."""
    from prometheus_client import Info

    structlog.contextvars.bind_contextvars(process=index)
    Info("leasq_broker_process", "The broker process of --processes that answered this scrape"
         ).info({"index": str(index), "pid": str(os.getpid())})  # fmt: skip


def reserve_port(listen: str) -> tuple[str, socket.socket | None]:
    """``listen`` with a concrete port. For port 0, a free port bound here with SO_REUSEPORT
    (children can bind it too) and the socket that holds it until the caller closes it."""
    host, _, port = listen.rpartition(":")
    if port != "0":
        return listen, None
    bare = host.strip("[]") or "0.0.0.0"
    family, kind, proto, _, address = socket.getaddrinfo(
        bare, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    return f"{host}:{sock.getsockname()[1]}", sock


@dataclass
class _Child:
    """One broker process slot: its index, the running process, its restart count."""

    index: int
    command: list[str]
    env: dict[str, str]
    ready_path: Path
    process: asyncio.subprocess.Process | None = None
    failures: int = 0
    started_at: float = 0.0
    # This process was sent SIGTERM or SIGINT (a second one would cut its grace short).
    stop_sent: bool = False

    async def start(self) -> None:
        self.ready_path.unlink(missing_ok=True)
        self.process = await asyncio.create_subprocess_exec(
            *self.command, stdin=asyncio.subprocess.DEVNULL, env=self.env,
            start_new_session=True, preexec_fn=_parent_death_signal())  # fmt: skip
        self.started_at = time.monotonic()
        self.stop_sent = False
        log.info("broker process started", process=self.index, pid=self.process.pid)

    def signal(self, sig: int) -> None:
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(sig)
            self.stop_sent = self.stop_sent or sig != signal.SIGHUP


class Supervisor:
    """Starts, watches, restarts and stops the children of one ``serve --processes N``."""

    def __init__(self, config: BrokerConfig, serve_argv: Sequence[str],
                 ready: Callable[[str], None] | None) -> None:  # fmt: skip
        self.config = config
        self.serve_argv = list(serve_argv)
        self.ready = ready
        self.children: list[_Child] = []
        self.stop_requested = asyncio.Event()
        self.stopping = False

    def _on_signal(self, sig: signal.Signals) -> None:
        for child in self.children:
            child.signal(sig)
        if sig != signal.SIGHUP:
            self.stop_requested.set()

    def _commands(self, listen: str, http: str | None, redis_url: str, tmp: Path) -> None:
        # In the environment, not on the command line, where a password would show in `ps`; a
        # --redis-url flag of serve_argv is the same URL.
        env = {**os.environ, "LEASQ_REDIS_URL": redis_url}
        for index in range(1, self.config.processes + 1):
            extra = ["--process-index", str(index), "--listen", listen,
                     "--ready-file", str(tmp / f"ready-{index}")]  # fmt: skip
            if http is not None:
                extra += ["--http-listen", http]
            command = [sys.executable, "-m", "leasq_broker", "serve", *self.serve_argv, *extra]
            self.children.append(_Child(index, command, env, tmp / f"ready-{index}"))

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in FORWARDED:
            loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            async with _redis_url(self.config) as (redis_url, redis_died):
                with tempfile.TemporaryDirectory(prefix="leasq-processes-") as tmp:
                    return await self._run_group(redis_url, redis_died, Path(tmp))
        finally:
            for sig in FORWARDED:
                loop.remove_signal_handler(sig)

    async def _run_group(self, redis_url: str, redis_died: asyncio.Future[int], tmp: Path
                         ) -> int:  # fmt: skip
        listen, grpc_hold = reserve_port(self.config.listen)
        http, http_hold = (
            (None, None)
            if self.config.http_address is None
            else reserve_port(self.config.http_address)
        )
        self._commands(listen, http, redis_url, tmp)
        try:
            for child in self.children:
                await child.start()
            serving = await self._all_ready(redis_died)
        finally:
            for hold in (grpc_hold, http_hold):
                if hold is not None:
                    hold.close()
        if not serving:
            return await self._stop_all(failed=not self.stop_requested.is_set())
        log.info("broker processes serving", address=listen, http=http,
                 processes=len(self.children))  # fmt: skip
        if self.ready is not None:
            self.ready(listen)
        keepers = [asyncio.ensure_future(self._keep(child)) for child in self.children]
        stop = asyncio.ensure_future(self.stop_requested.wait())
        waiters: set[asyncio.Future[Any]] = {stop, redis_died}
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        failed = redis_died.done()
        if failed:
            log.error("embedded redis exited unexpectedly; stopping the broker processes")
        return await self._stop_all(failed=failed, keepers=keepers)

    async def _all_ready(self, redis_died: asyncio.Future[int]) -> bool:
        """True once every child has written its ready file; False if one exits first, the
        embedded Redis dies, or a stop is requested."""
        while not all(child.ready_path.exists() for child in self.children):
            if self.stop_requested.is_set() or redis_died.done():
                return False
            for child in self.children:
                assert child.process is not None
                if child.process.returncode is not None:
                    log.error("a broker process exited before serving; stopping the others",
                              process=child.index, code=child.process.returncode)  # fmt: skip
                    return False
            await asyncio.sleep(READY_POLL_SECONDS)
        return not self.stop_requested.is_set()

    async def _keep(self, child: _Child) -> int:
        """Restart ``child`` whenever it exits on its own; its last exit code once stopping."""
        while True:
            assert child.process is not None
            code = await child.process.wait()
            if self.stopping:
                return code
            if time.monotonic() - child.started_at > BACKOFF_RESET_SECONDS:
                child.failures = 0
            delay = restart_delay(child.failures)
            child.failures += 1
            log.warning("broker process exited unexpectedly; restarting it", process=child.index,
                        pid=child.process.pid, code=code, restart_in_seconds=delay)  # fmt: skip
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_requested.wait(), delay)
            if self.stopping or self.stop_requested.is_set():
                return 0
            await child.start()
            if self.stopping or self.stop_requested.is_set():  # came while it started
                child.signal(signal.SIGTERM)

    async def _stop_all(self, *, failed: bool, keepers: Sequence[asyncio.Future[int]] = ()
                        ) -> int:  # fmt: skip
        """Stop every child and wait for it; the parent's exit code. Children a stop signal
        has reached already get no second one (it would cut their grace short)."""
        self.stopping = True
        for child in self.children:
            if not child.stop_sent:
                child.signal(signal.SIGTERM)
        waits = keepers or [asyncio.ensure_future(c.process.wait())
                            for c in self.children if c.process]  # fmt: skip
        done = asyncio.gather(*waits)
        limit = self.config.grace_seconds + STOP_MARGIN_SECONDS
        try:
            codes = list(await asyncio.wait_for(asyncio.shield(done), limit))
        except TimeoutError:
            log.error("broker processes still running long after the grace period; killing them",
                      seconds=limit)  # fmt: skip
            for child in self.children:
                child.signal(signal.SIGKILL)
            codes = list(await done)
        log.info("broker processes stopped", processes=len(self.children), codes=codes)
        # A process stopped before it had its handlers installed dies of the signal itself.
        clean = (0, -signal.SIGTERM, -signal.SIGINT)
        return 1 if failed or any(code not in clean for code in codes) else 0


@contextlib.asynccontextmanager
async def _redis_url(config: BrokerConfig) -> AsyncIterator[tuple[str, asyncio.Future[int]]]:
    """The Redis URL for every child, and a future done if the embedded Redis dies; the
    embedded Redis (no ``--redis-url``) is started here and stopped after the children."""
    if config.redis_url is not None:
        yield config.redis_url, asyncio.get_running_loop().create_future()
        return
    embedded = EmbeddedRedis(config.data_dir)
    url = await embedded.start()
    died = asyncio.ensure_future(embedded.wait_exited())
    try:
        yield url, died
    finally:
        died.cancel()
        await embedded.stop()


def run_supervisor(config: BrokerConfig, serve_argv: Sequence[str],
                   ready: Callable[[str], None] | None) -> int:  # fmt: skip
    """The exit code of a parent of ``config.processes`` broker processes."""
    configure_logging(config.log_level, config.log_format)
    try:
        return asyncio.run(Supervisor(config, serve_argv, ready).run())
    except (OSError, EmbeddedRedisError) as exc:
        log.error("broker failed", error=str(exc), error_type=type(exc).__name__)
        return 1
