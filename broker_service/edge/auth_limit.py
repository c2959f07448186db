"""Failed authentication attempts: a token bucket per peer address, and a budget of log lines.

A peer (client IP address) may fail authentication :data:`FAILURE_BURST` times in a row, then
once per :data:`FAILURE_REFILL_SECONDS`; beyond that its failed calls are answered
RESOURCE_EXHAUSTED with a retry delay instead of being checked and logged. Calls with a valid
token from the same address are not held back: tokens are long random secrets that guessing
cannot find, so the limit is there to bound the cost and the log volume of bad-token traffic,
and one misconfigured client must not lock out its neighbours behind the same NAT.
"""

from __future__ import annotations

import time
from collections.abc import Callable

FAILURE_BURST = 10
FAILURE_REFILL_SECONDS = 1.0
#: Log lines about failed attempts: a burst of this many, then one per LOG_REFILL_SECONDS.
LOG_BURST = 10
LOG_REFILL_SECONDS = 10.0
_MAX_PEERS = 10_000


class TokenBucket:
    """``capacity`` tokens, one more every ``refill_seconds``; :meth:`take` spends one."""

    __slots__ = ("_clock", "_level", "_updated", "capacity", "refill_seconds")

    def __init__(
        self, capacity: int, refill_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.capacity = capacity
        self.refill_seconds = refill_seconds
        self._clock = clock
        self._level = float(capacity)
        self._updated = clock()

    def _refill(self) -> float:
        now = self._clock()
        self._level = min(self.capacity, self._level + (now - self._updated) / self.refill_seconds)
        self._updated = now
        return self._level

    def take(self) -> bool:
        """Spend one token; False (and nothing spent) when the bucket is empty."""
        if self._refill() < 1.0:
            return False
        self._level -= 1.0
        return True

    def wait_seconds(self) -> float:
        """How long until one token is there again (0 when one is)."""
        return max(0.0, (1.0 - self._refill()) * self.refill_seconds)

    @property
    def full(self) -> bool:
        return self._refill() >= self.capacity


class FailureLimiter:
    """Failed attempts per peer address, and how many of them may still be logged."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._peers: dict[str, TokenBucket] = {}
        self._log = TokenBucket(LOG_BURST, LOG_REFILL_SECONDS, clock)
        self.unlogged = 0

    def allow(self, peer: str) -> float | None:
        """None when this failed attempt may be answered as such; else seconds to wait."""
        bucket = self._peers.get(peer)
        if bucket is None:
            if len(self._peers) >= _MAX_PEERS:
                self._forget_full()
            bucket = self._peers[peer] = TokenBucket(FAILURE_BURST, FAILURE_REFILL_SECONDS,
                                                     self._clock)  # fmt: skip
        if bucket.take():
            return None
        return bucket.wait_seconds()

    def may_log(self) -> bool:
        """Whether this attempt gets a log line; the others are counted in :attr:`unlogged`."""
        if self._log.take():
            return True
        self.unlogged += 1
        return False

    def take_unlogged(self) -> int:
        """The count of attempts not logged since the last logged one, reset to 0."""
        count, self.unlogged = self.unlogged, 0
        return count

    def _forget_full(self) -> None:
        for peer in [peer for peer, bucket in self._peers.items() if bucket.full]:
            del self._peers[peer]
        if len(self._peers) >= _MAX_PEERS:  # all of them failing: forget the oldest half
            for peer in list(self._peers)[: _MAX_PEERS // 2]:
                del self._peers[peer]


def peer_host(peer: str) -> str:
    """The address part of a gRPC peer: ``ipv4:10.0.0.7:51234`` -> ``ipv4:10.0.0.7``."""
    kind, _, rest = peer.partition(":")
    if kind in ("ipv4", "ipv6"):
        return f"{kind}:{rest.rpartition(':')[0]}"
    return peer
