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


def _comparison(rows: list[dict[str, Any]]) -> list[tuple[str, str, bool | None]]:
    leasq = next((row for row in rows if row["name"] == "Leasq"), {})
    out: list[tuple[str, str, bool | None]] = []
    peer, best = _peer_best(rows, "single")
    ratio = _ratio(leasq.get("single"), best)
    out.append(
        (
            f"one-task enqueue >= 1.5x the fastest peer ({peer})",
            f"{ratio:.2f}x" if ratio else "-",
            ratio >= 1.5 if ratio else None,
        )
    )
    bulk = leasq.get("bulk")
    out.append(
        (
            "bulk enqueue >= 50,000 tasks/s",
            f"{bulk:,.0f}/s" if bulk else "-",
            bulk >= 50_000 if bulk else None,
        )
    )
    celery = next((row.get("drain") for row in rows if row["name"] == "Celery"), None)
    ratio = _ratio(leasq.get("drain"), celery)
    out.append(
        ("drain >= 5x Celery's", f"{ratio:.1f}x" if ratio else "-", ratio >= 5 if ratio else None)
    )
    peer, best = _peer_best(rows, "drain")
    ratio = _ratio(leasq.get("drain"), best)
    out.append(
        (
            f"drain >= 2x the fastest peer ({peer})",
            f"{ratio:.2f}x" if ratio else "-",
            ratio >= 2 if ratio else None,
        )
    )
    for key, limit in (("p50", 2.0), ("p99", 10.0)):
        value = leasq.get(key)
        out.append(
            (
                f"idle latency {key} <= {limit:.0f} ms",
                f"{value:.2f} ms" if value else "-",
                value <= limit if value else None,
            )
        )
    value = leasq.get("recovery")
    out.append(
        (
            f"crash recovery <= lease duration + 1 s ({LEASE_S + 1:.0f} s)",
            leasq.get("recovery_text", "-"),
            value <= LEASE_S + 1 if value else None,
        )
    )
    return out


def _scale(scale: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
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
