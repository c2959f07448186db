"""PNG charts of the comparison (bars per scenario) and of Leasq's scale curves (lines)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

LEASQ_COLOR = "#d1495b"
PEER_COLOR = "#8d99ae"


def _colors(names: list[str]) -> list[str]:
    return [LEASQ_COLOR if name == "Leasq" else PEER_COLOR for name in names]


def _bars(
    ax: Any,
    names: list[str],
    values: list[float | None],
    title: str,
    unit: str,
    log: bool = False,
    missing: str = "n/a",
    ceiling: float | None = None,
) -> None:
    """Bars with their values; a missing value is a hatched bar at ``ceiling`` (e.g. the crash
    scenario's cap), or an empty slot with the ``missing`` label."""
    shown = [v if v is not None else (ceiling or 0.0) for v in values]
    bars = ax.bar(names, shown, color=_colors(names))
    for bar, value in zip(bars, values, strict=True):
        if value is None and ceiling:
            bar.set_hatch("//")
            bar.set_facecolor("white")
            bar.set_edgecolor(PEER_COLOR)
    top = max(shown) if any(shown) else 1.0
    for bar, value in zip(bars, values, strict=True):
        label = missing if value is None else f"{value:,.0f}" if value >= 100 else f"{value:.1f}"
        y = bar.get_height() if value is not None or ceiling else (1 if log else 0)
        ax.annotate(
            label,
            (bar.get_x() + bar.get_width() / 2, y),
            ha="center",
            va="bottom",
            fontsize=8,
            xytext=(0, 2),
            textcoords="offset points",
        )
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(unit)
    if log:
        ax.set_yscale("log")
        ax.set_ylim(top=top * 2.5)
    else:
        ax.set_ylim(0, top * 1.15)
    ax.tick_params(axis="x", labelsize=8, rotation=20)


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _scenario_specs(cap: float) -> list[tuple[str, str, str, str, bool, str]]:
    """(file, title, unit, figure key, log scale, label of a missing value) per scenario."""
    return [
        ("bench-enqueue.png", "Enqueue, one-task API", "tasks/s", "single", False, "error"),
        ("bench-bulk.png", "Enqueue, bulk API", "tasks/s", "bulk", False, "no bulk API"),
        ("bench-drain.png", "Drain: one worker process, no-op tasks", "tasks/s", "drain",
         False, "error"),
        ("bench-latency.png", "Idle latency enqueue -> start, p50", "ms (log)", "p50", True,
         "error"),
        ("bench-recovery.png", f"Crash recovery after kill -9 (hatched: none in {cap:.0f} s)",
         "s", "recovery", False, "none"),
    ]  # fmt: skip


def scenario_panels(rows: list[dict[str, Any]], out: Path, cap: float) -> list[Path]:
    """One bar chart per scenario, and an overview of the four headline ones."""
    names = [row["name"] for row in rows]
    specs = _scenario_specs(cap)

    def draw(ax: Any, spec: tuple[str, str, str, str, bool, str]) -> None:
        _, title, unit, key, log, missing = spec
        ceiling = cap if key == "recovery" else None
        _bars(ax, names, [row.get(key) for row in rows], title, unit, log, missing, ceiling)

    paths = []
    for spec in specs:
        fig, ax = plt.subplots(figsize=(7, 3.6))
        draw(ax, spec)
        paths.append(_save(fig, out / spec[0]))
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    for ax, spec in zip(axes.flat, [specs[0], specs[2], specs[3], specs[4]], strict=True):
        draw(ax, spec)
    fig.suptitle(
        "Leasq and the Python task queues on one 2-core machine (higher is better "
        "for rates, lower for times)",
        fontsize=11,
    )
    paths.append(_save(fig, out / "bench-overview.png"))
    return paths


def _curve(
    ax: Any, points: dict[str, dict[str, float]], title: str, xlabel: str, logx: bool
) -> None:
    xs = [int(x) for x in points]
    for key, style in (("p50", "o-"), ("p99", "s--")):
        ax.plot(
            xs,
            [points[str(x)][key] for x in xs],
            style,
            label=key,
            color=LEASQ_COLOR if key == "p50" else PEER_COLOR,
        )
    if logx:
        ax.set_xscale("log")
    ax.set_xticks(xs, [f"{x:,}" for x in xs])
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("ms")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)


def scale_curves(scale: dict[str, Any], out: Path) -> list[Path]:
    specs = [
        (
            "scale-depth.png",
            scale["depth"]["lease"],
            "Lease(1) vs pending tasks in the queue",
            "pending tasks",
            True,
        ),
        (
            "scale-queues.png",
            scale["queues"],
            "Lease(1) vs weighted queues asked",
            "queues in the Lease call",
            True,
        ),
        (
            "scale-heartbeat.png",
            scale["heartbeat"],
            "Heartbeat vs leases held by the worker",
            "leases in one Heartbeat",
            True,
        ),
    ]
    paths = []
    fig_all, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax_all, (filename, points, title, xlabel, logx) in zip(axes, specs, strict=True):
        fig, ax = plt.subplots(figsize=(6, 3.6))
        _curve(ax, points, title, xlabel, logx)
        paths.append(_save(fig, out / filename))
        _curve(ax_all, points, title, xlabel, logx)
    paths.append(_save(fig_all, out / "scale-curves.png"))
    return paths
