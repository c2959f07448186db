"""Process-pool handlers: module-level so that a spawned child can import them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from leasq_worker import SkipRetry, Task


def square(task: Task) -> dict[str, Any]:
    """CPU work in a child process; tells which process ran it."""
    n = task.json()["n"]
    return {"square": n * n, "pid": os.getpid()}


def spin(task: Task) -> None:
    """Writes its pid where the payload says, then never returns (until killed)."""
    Path(task.json()["pid_file"]).write_text(str(os.getpid()))
    while True:
        pass


def refuse(task: Task) -> None:
    """An intent exception raised in a child must arrive as itself."""
    raise SkipRetry(f"cannot handle {task.id}")
