"""The interface every benchmarked system implements, in two halves.

The producer half (:class:`Producer`) runs in the driver process (``peers.driver``) under the
system's own interpreter; the runner half (:class:`PeerInfo`) is plain data the runner reads
without importing any queue library, so a system whose current release needs different
dependencies (arq pins redis < 6) can run from its own virtualenv.
"""

from __future__ import annotations

import asyncio
import sys
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# Async producers keep this many enqueue calls in flight (the same for Leasq, arq and taskiq).
IN_FLIGHT = 64
QUEUE = "bench"


class Producer(ABC):
    """Enqueues the benchmark's tasks; methods are async so one driver loop runs them all."""

    has_bulk = False

    async def open(self) -> None:  # noqa: B027 - an optional hook
        """Connect before the clock starts."""

    async def close(self) -> None:  # noqa: B027 - an optional hook
        """Release connections."""

    @abstractmethod
    async def single(self, n: int) -> None:
        """Enqueue ``n`` no-op tasks through the normal one-task API."""

    async def bulk(self, n: int) -> None:
        """Enqueue ``n`` no-op tasks through the system's bulk API."""
        raise NotImplementedError

    async def pending(self) -> int:
        """Tasks waiting in the queue (to check a bulk enqueue landed whole)."""
        raise NotImplementedError

    @abstractmethod
    async def probe(self, sent: float) -> None:
        """Enqueue one latency probe carrying its enqueue instant ``sent``."""

    @abstractmethod
    async def crash(self) -> None:
        """Enqueue one task whose handler records its start and hangs."""


async def in_flight(n: int, call: Callable[[], Awaitable[object]], width: int = IN_FLIGHT) -> None:
    """Make ``n`` calls with ``width`` of them in flight at any time."""
    remaining = n

    async def lane() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await call()

    await asyncio.gather(*(lane() for _ in range(min(width, n))))


@dataclass(frozen=True)
class PeerInfo:
    """What the runner needs to know about one system; no imports of the system itself."""

    name: str
    module: str
    distributions: tuple[str, ...]
    worker: str
    single_api: str
    bulk_api: str | None
    recovery: str
    # The worker command; ``{python}``, ``{redis}`` (URL) and ``{broker}`` (Leasq's address)
    # are filled in.
    worker_argv: Sequence[str]
    needs_broker: bool = False
    python_env: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)

    def worker_command(self, redis: str, broker: str = "") -> list[str]:
        values = {"python": self.python(), "redis": redis, "broker": broker}
        return [part.format(**values) for part in self.worker_argv]

    def python(self) -> str:
        """The interpreter of the system's own virtualenv when one is set up, else ours."""
        if self.python_env:
            candidate = Path(__file__).resolve().parents[2] / self.python_env / "bin" / "python"
            if candidate.exists():
                return str(candidate)
        return sys.executable
