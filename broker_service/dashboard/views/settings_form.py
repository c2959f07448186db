"""The queue page's settings form, read into the same update UpdateQueueSettings applies.

The form shows every current value; only the fields the person changed become part of the
update (a cleared field returns to its default), so saving the form unchanged changes nothing
and a group setting left at its default stays a default. Values are checked by the settings
service itself: the page shows its message.
"""

from __future__ import annotations

import math

from multidict import MultiMapping

from leasq_broker.errors import InvalidField
from leasq_broker.groups.models import SettingsUpdate
from leasq_broker.settings.models import (
    DEFAULT_PER_KEY_LIMIT,
    FlowUpdate,
    QueueSettings,
    QueueSettingsUpdate,
    RateLimit,
)


def settings_update(form: MultiMapping[str | object], current: QueueSettings
                    ) -> QueueSettingsUpdate:
    """The changes the form asks for against ``current``; InvalidField for text that is not a
    number (named as the form labels it)."""
    return QueueSettingsUpdate(_groups(form, current), _flow(form, current))


def _text(form: MultiMapping[str | object], name: str) -> str:
    return str(form.get(name, "")).strip()


def _number(form: MultiMapping[str | object], name: str, label: str) -> float | None:
    text = _text(form, name)
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise InvalidField(label, f"enter a number, not {text[:40]!r}") from None
    if not math.isfinite(value):
        raise InvalidField(label, f"enter a finite number, not {text[:40]!r}")
    return value


def _whole(form: MultiMapping[str | object], name: str, label: str) -> int | None:
    value = _number(form, name, label)
    if value is not None and value != int(value):
        raise InvalidField(label, f"enter a whole number, not {value:g}")
    return None if value is None else int(value)


def _flow(form: MultiMapping[str | object], current: QueueSettings) -> FlowUpdate:
    flow = current.flow
    reset: set[str] = set()
    rate = None
    per_second = _number(form, "rate_per_second", "rate limit per second")
    burst = _whole(form, "rate_burst", "rate limit burst") or 0
    if not per_second:
        if flow.rate_limit is not None:
            reset.add("rate_limit")
    elif flow.rate_limit is None or RateLimit(per_second, burst).resolved() != flow.rate_limit:
        rate = RateLimit(per_second, burst)
    max_active = _whole(form, "max_active", "max active") or 0
    if max_active != flow.max_active and not max_active:
        reset.add("max_active")
    per_key = _whole(form, "per_key_limit", "per-key limit") or 0
    if (per_key or DEFAULT_PER_KEY_LIMIT) != flow.per_key_limit and not per_key:
        reset.add("per_key_limit")
    return FlowUpdate(
        rate, max_active if max_active != flow.max_active and max_active else None,
        per_key if per_key != flow.per_key_limit and per_key else None, frozenset(reset))


def _groups(form: MultiMapping[str | object], current: QueueSettings) -> SettingsUpdate:
    """Group settings: grace period and max delay in seconds, max size in tasks; fields not in
    the form (the page hides them until the queue has groups) stay as they are."""
    groups = current.groups
    values: dict[str, int] = {}
    reset: set[str] = set()
    fields = (("grace_ms", "group_grace_s", "group grace period", groups.grace_ms, 1000),
              ("max_delay_ms", "group_max_delay_s", "group max delay", groups.max_delay_ms, 1000),
              ("max_size", "group_max_size", "group max size", groups.max_size, 1))
    for name, field, label, now, scale in fields:
        if field not in form:
            continue
        value = _number(form, field, label)
        if value is None:
            reset.add(name)
        elif round(value * scale) != now:
            values[name] = round(value * scale)
    return SettingsUpdate(**values, reset=frozenset(reset))
