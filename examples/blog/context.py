"""What a worker's handlers share: settings and a producer client, made on first use.

A worker module is imported by ``python -m leasq_worker MODULE:registry`` before anything runs;
building the registry must not read configuration or connect anywhere. The context does both the
first time a handler asks, once per process, from whichever pool thread gets there first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from examples.blog import db
from examples.blog.settings import Settings
from leasq_sdk import Client


class WorkerContext:
    """Settings (with the database schema in place) and a Leasq client, built lazily."""

    def __init__(self, load: Callable[[], Settings] = Settings.from_env) -> None:
        self._load = load
        self._lock = threading.Lock()
        self._settings: Settings | None = None
        self._client: Client | None = None

    @property
    def settings(self) -> Settings:
        with self._lock:
            if self._settings is None:
                settings = self._load()
                db.create_schema(settings.db_path)
                self._settings = settings
            return self._settings

    @property
    def client(self) -> Client:
        """A sync client (thread-safe) for handlers that enqueue follow-up tasks."""
        settings = self.settings
        with self._lock:
            if self._client is None:
                self._client = Client(settings.broker, token=settings.broker_token)
            return self._client
