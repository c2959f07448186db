"""SIGHUP: re-read the files the broker was started with (TLS certificates, tokens file).

Both are also picked up when they change on disk; SIGHUP is for operators and tools (certbot,
cert-manager hooks, ``systemctl reload``) that expect it, and for file systems whose
modification times cannot be trusted.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable

import structlog

log = structlog.get_logger(__name__)


class Hangup:
    """Calls every registered reload function on SIGHUP, while entered (in a running loop)."""

    def __init__(self) -> None:
        self._reloads: list[Callable[[], None]] = []
        self._installed = False

    def add(self, reload: Callable[[], None]) -> None:
        self._reloads.append(reload)

    def __enter__(self) -> Hangup:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.reload)
            self._installed = True
        return self

    def __exit__(self, *_: object) -> None:
        if self._installed:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            self._installed = False

    def reload(self) -> None:
        log.info("SIGHUP: reloading certificates and tokens", reloads=len(self._reloads))
        for reload in self._reloads:
            reload()
