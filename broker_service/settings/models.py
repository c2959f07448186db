"""Plain values of a queue's settings: how its groups flush and how its leases are limited.

Flow control lives in the lease path (``lease.lua`` reads the settings hash on every call), so
its values are stored as the script reads them: ``rr`` rate per second, ``rb`` burst (always
resolved, never 0), ``ma`` max active, ``kl`` per-key limit. A missing field means no limit
(``kl``: 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from leasq_broker.errors import InvalidField
from leasq_broker.groups.models import GroupSettings, SettingsUpdate

MIN_RATE = 0.001
MAX_RATE = 1_000_000.0
MAX_BURST = 1_000_000
MAX_ACTIVE = 1_000_000
MAX_PER_KEY_LIMIT = 10_000
DEFAULT_PER_KEY_LIMIT = 1
RATE_FIELD, BURST_FIELD, MAX_ACTIVE_FIELD, KEY_LIMIT_FIELD = "rr", "rb", "ma", "kl"
FLOW_FIELDS = (RATE_FIELD, BURST_FIELD, MAX_ACTIVE_FIELD, KEY_LIMIT_FIELD)


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``per_second`` leases per second, ``burst`` at once after a quiet spell."""

    per_second: float
    burst: int = 0

    def resolved(self) -> RateLimit:
        """The burst the contract gives 0: max(1, per_second rounded up)."""
        return RateLimit(self.per_second, self.burst or max(1, math.ceil(self.per_second)))

    def validate(self, field: str) -> None:
        if not math.isfinite(self.per_second) or not MIN_RATE <= self.per_second <= MAX_RATE:
            raise InvalidField(f"{field}.per_second", f"must be between {MIN_RATE} and "
                               f"{MAX_RATE:,.0f} leases per second (got {self.per_second}); "
                               "to remove the limit, reset rate_limit")
        if not 0 <= self.burst <= MAX_BURST:
            raise InvalidField(f"{field}.burst", f"must be between 1 and {MAX_BURST:,} "
                               f"(0: the default) (got {self.burst:,})")


@dataclass(frozen=True, slots=True)
class FlowSettings:
    """A queue's limits: None / 0 means unlimited."""

    rate_limit: RateLimit | None = None
    max_active: int = 0
    per_key_limit: int = DEFAULT_PER_KEY_LIMIT

    @property
    def limited(self) -> bool:
        return self.rate_limit is not None or self.max_active > 0


@dataclass(frozen=True, slots=True)
class FlowUpdate:
    """New flow values; a name in ``reset`` (rate_limit, max_active, per_key_limit) returns to
    its default."""

    rate_limit: RateLimit | None = None
    max_active: int | None = None
    per_key_limit: int | None = None
    reset: frozenset[str] = frozenset()

    def validate(self, field: str) -> None:
        if self.rate_limit is not None:
            self.rate_limit.validate(f"{field}.rate_limit")
        if self.max_active is not None and not 0 <= self.max_active <= MAX_ACTIVE:
            raise InvalidField(f"{field}.max_active", f"must be between 1 and {MAX_ACTIVE:,} "
                               f"(0: no limit) (got {self.max_active:,})")
        if self.per_key_limit is not None and not 0 <= self.per_key_limit <= MAX_PER_KEY_LIMIT:
            raise InvalidField(f"{field}.concurrency_keys.per_key_limit",
                               f"must be between 1 and {MAX_PER_KEY_LIMIT:,} (0: the default, "
                               f"1) (got {self.per_key_limit:,})")


@dataclass(frozen=True, slots=True)
class QueueSettings:
    """Everything stored about a queue's behaviour."""

    groups: GroupSettings = field(default_factory=GroupSettings)
    flow: FlowSettings = field(default_factory=FlowSettings)


@dataclass(frozen=True, slots=True)
class QueueSettingsUpdate:
    """An UpdateQueueSettings, validated per part."""

    groups: SettingsUpdate = field(default_factory=SettingsUpdate)
    flow: FlowUpdate = field(default_factory=FlowUpdate)

    def validate(self, field: str) -> None:
        self.groups.validate(f"{field}.groups")
        self.flow.validate(field)
