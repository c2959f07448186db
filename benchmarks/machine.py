"""Facts about the machine a benchmark ran on, for the report's header."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import redis


def _cpu_model() -> str:
    with_model = [
        line for line in _read("/proc/cpuinfo").splitlines() if line.startswith("model name")
    ]
    return with_model[0].split(":", 1)[1].strip() if with_model else platform.processor()


def _ram_gib() -> float:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024
    return 0.0


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def load() -> str:
    """The 1, 5 and 15 minute load averages, as ``uptime`` shows them."""
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def facts(redis_url: str) -> dict[str, str]:
    client = redis.Redis.from_url(redis_url)
    try:
        redis_version = str(client.info("server")["redis_version"])
    finally:
        client.close()
    return {
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count()),
        "ram": f"{_ram_gib():.0f} GiB",
        "python": platform.python_version(),
        "redis": redis_version,
        "os": f"{platform.system()} {platform.release()}",
    }
