"""Leasq's performance targets, checked against a comparison and a scale run."""

from __future__ import annotations

from typing import Any

LEASE_S = 15.0


def _check(ok: bool | None) -> str:
    return "n/a" if ok is None else "met" if ok else "**missed**"


def _peer_best(rows: list[dict[str, Any]], key: str) -> tuple[str, float | None]:
    peers = [(row[key], row["name"]) for row in rows if row["name"] != "Leasq" and row.get(key)]
    if not peers:
        return "-", None
    value, name = max(peers)
    return name, value


def _ratio(value: float | None, base: float | None) -> float | None:
    return value / base if value is not None and base else None


Check = tuple[str, str, bool | None]


def _at_least(name: str, value: float | None, limit: float, shown: str) -> Check:
    return name, shown if value else "-", value >= limit if value else None


def _at_most(name: str, value: float | None, limit: float, shown: str) -> Check:
    return name, shown if value else "-", value <= limit if value else None


def _throughput(rows: list[dict[str, Any]], leasq: dict[str, Any]) -> list[Check]:
    peer, best = _peer_best(rows, "single")
    single = _ratio(leasq.get("single"), best) or 0.0
    bulk = leasq.get("bulk") or 0.0
    celery = next((row.get("drain") for row in rows if row["name"] == "Celery"), None)
    vs_celery = _ratio(leasq.get("drain"), celery) or 0.0
    drain_peer, drain_best = _peer_best(rows, "drain")
    vs_best = _ratio(leasq.get("drain"), drain_best) or 0.0
    return [
        _at_least(f"one-task enqueue >= 1.5x the fastest peer ({peer})", single, 1.5,
                  f"{single:.2f}x"),
        _at_least("bulk enqueue >= 50,000 tasks/s", bulk, 50_000, f"{bulk:,.0f}/s"),
        _at_least("drain >= 5x Celery's", vs_celery, 5, f"{vs_celery:.1f}x"),
        _at_least(f"drain >= 2x the fastest peer ({drain_peer})", vs_best, 2,
                  f"{vs_best:.2f}x"),
    ]  # fmt: skip


def _comparison(rows: list[dict[str, Any]]) -> list[Check]:
    leasq = next((row for row in rows if row["name"] == "Leasq"), {})
    out = _throughput(rows, leasq)
    for key, limit in (("p50", 2.0), ("p99", 10.0)):
        value = leasq.get(key) or 0.0
        out.append(_at_most(f"idle latency {key} <= {limit:.0f} ms", value, limit,
                            f"{value:.2f} ms"))  # fmt: skip
    recovery = leasq.get("recovery") or 0.0
    out.append(_at_most(f"crash recovery <= lease duration + 1 s ({LEASE_S + 1:.0f} s)",
                        recovery, LEASE_S + 1, leasq.get("recovery_text", "-")))  # fmt: skip
    return out


def _scale(scale: dict[str, Any]) -> list[Check]:
    lease = scale["depth"]["lease"]
    depths = sorted(lease, key=int)
    ratio = lease[depths[-1]]["p50"] / lease[depths[0]]["p50"]
    deepest = f"{int(depths[-1]):,}"
    queues = scale["queues"]
    q_ratio = queues["100"]["p50"] / queues["1"]["p50"]
    beyond = scale["depth"]["memory"]["beyond_payload"]
    return [
        (f"Lease p50 at {deepest} pending <= 1.2x at 1,000", f"{ratio:.2f}x", ratio <= 1.2),
        ("Lease p50 with 100 queues <= 2x with 1", f"{q_ratio:.2f}x", q_ratio <= 2),
        (
            "Redis memory <= 400 bytes per pending task beyond its payload "
            "(hash-max-listpack-value 1024)",
            f"{beyond:.0f} B",
            beyond <= 400,
        ),
    ]


def target_rows(rows: list[dict[str, Any]], scale: dict[str, Any] | None) -> list[str]:
    checks = _comparison(rows) + (_scale(scale) if scale else [])
    lines = ["| target | Leasq | |", "|---|--:|---|"]
    lines += [f"| {name} | {value} | {_check(ok)} |" for name, value, ok in checks]
    return lines
