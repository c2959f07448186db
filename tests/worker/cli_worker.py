"""``leasq worker`` run as a command, with the arguments and environment a test chooses.

Unlike ``worker_testing.WorkerProcess`` (which always passes ``--broker`` and ``--queue`` and
serves ``worker_apps.events``), this runs any registry with exactly the given arguments, so a
test can leave ``--broker`` to ``LEASQ_BROKER`` or see a refused worker exit.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent


class CliWorker:
    """One ``python -m leasq_worker`` subprocess; its JSON log records in :attr:`logs`."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.logs: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, registry: str, args: Sequence[str], env: Mapping[str, str] | None = None
                    ) -> CliWorker:  # fmt: skip
        """Start ``leasq worker REGISTRY --log-format json ARGS`` with ``env`` added to this
        process's environment (LEASQ_* variables of the test process are dropped)."""
        environment = {k: v for k, v in os.environ.items() if not k.startswith("LEASQ_")}
        environment["PYTHONPATH"] = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
        environment.update(env or {})
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "leasq_worker", registry, "--log-format", "json", *args,
            env=environment, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        return cls(process)

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for line in self.process.stderr:
            try:
                self.logs.append(json.loads(line))
            except json.JSONDecodeError:
                self.logs.append({"event": "(text)", "line": line.decode(errors="replace")})
            self._changed.set()
        self._changed.set()

    async def wait_log(self, event: str, within: float = 10) -> dict[str, Any]:
        """The first record with this event, waiting up to ``within`` seconds for it."""

        async def find() -> dict[str, Any]:
            while True:
                for record in self.logs:
                    if record.get("event") == event:
                        return record
                if self._reader.done():
                    raise AssertionError(f"worker exited without logging {event!r}: {self.logs}")
                self._changed.clear()
                await self._changed.wait()

        try:
            return await asyncio.wait_for(find(), within)
        except TimeoutError:
            raise AssertionError(f"no {event!r} within {within}s: {self.logs}") from None

    async def exit_code(self, within: float) -> int:
        """Wait for the process to exit by itself; its exit code."""
        try:
            code = await asyncio.wait_for(self.process.wait(), within)
        except TimeoutError:
            raise AssertionError(f"worker still running after {within}s: {self.logs}") from None
        await self._reader
        return code

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        await self._reader
