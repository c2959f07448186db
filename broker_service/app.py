"""Wires one broker process: store, domain services, background loops and servicers."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from redis.asyncio import Redis

from leasq_broker.admin import Admin
from leasq_broker.clock import Clock, RedisClock
from leasq_broker.cluster_slots import is_cluster
from leasq_broker.config import BrokerConfig
from leasq_broker.edge import converters, group_converters
from leasq_broker.edge.schedule_servicer import ScheduleServicer
from leasq_broker.edge.servicers import BrokerServicer, InspectServicer
from leasq_broker.edge.shutdown import ShutdownGate
from leasq_broker.groups.loop import Aggregator
from leasq_broker.groups.service import Groups
from leasq_broker.groups.store import GroupStore
from leasq_broker.keys import Keys
from leasq_broker.leasing import Leasing
from leasq_broker.loops.base import BackgroundLoop
from leasq_broker.loops.due import DueIndex
from leasq_broker.loops.forwarder import Forwarder
from leasq_broker.loops.janitor import Janitor
from leasq_broker.loops.reclaimer import Reclaimer
from leasq_broker.migrations import migrate_layout
from leasq_broker.notifier import Notifier
from leasq_broker.operations.service import Operations
from leasq_broker.patterns.index import PatternIndex
from leasq_broker.patterns.refresher import PatternRefresher
from leasq_broker.patterns.store import PatternStore
from leasq_broker.producer import Producer, ProducerLimits
from leasq_broker.reader import TaskReader
from leasq_broker.schedules.file_sync import ScheduleFileSync
from leasq_broker.schedules.loop import Scheduler
from leasq_broker.schedules.service import Schedules
from leasq_broker.schedules.store import ScheduleStore
from leasq_broker.scripts import ReplicaAck, Scripts
from leasq_broker.settings.file_sync import QueueSettingsFileSync
from leasq_broker.settings.service import QueueSettingsService
from leasq_broker.settings.store import QueueSettingsStore
from leasq_broker.store import TaskStore
from leasq_broker.workers.registry import WorkerRegistry

if TYPE_CHECKING:
    from leasq_broker.dashboard.services import DashboardServices


class BrokerApp:
    """Owns everything that lives between the gRPC server and Redis.

    The server module builds it with a connected ``Redis`` client, registers
    ``broker_servicer`` and ``inspect_servicer``, calls :meth:`start` before serving and
    :meth:`stop` after the server has drained.
    """

    def __init__(self, config: BrokerConfig, redis: Redis, clock: Clock | None = None) -> None:
        self._redis = redis
        self._redis_clock = RedisClock() if clock is None else None
        self.clock: Clock = clock or self._redis_clock  # type: ignore[assignment]
        self.keys = keys = Keys(config.key_prefix, cluster=is_cluster(redis))
        self.scripts = Scripts(redis, ReplicaAck(config.redis_min_replicas_ack,
                                                 config.redis_min_replicas_timeout_ms))
        self.store = TaskStore(redis, self.scripts, keys, lease_lost_cap=config.lease_lost_cap,
                               release_cap=config.release_cap)
        self.notifier = Notifier(redis, keys.notify_channel())
        self.patterns = PatternIndex(PatternStore(redis, keys))
        self.notifier.on_wake = self.patterns.hint
        self.pattern_refresher = PatternRefresher(self.patterns)
        self.due_index = DueIndex(redis, keys)
        self.reclaimer = Reclaimer(self.store, self.clock, self.due_index)
        self.forwarder = Forwarder(self.store, self.clock, self.due_index)
        self.store.on_retry_due = self.forwarder.note_due
        self.janitor = Janitor(
            self.store, self.clock, self.due_index,
            archive_max_age_ms=int(config.archive_max_age_seconds * 1000),
            archive_max_size=config.archive_max_size,
        )
        producer = Producer(
            self.store, keys, self.clock, converters.encode_envelope,
            ProducerLimits(config.max_payload_bytes), self.notifier.wake,
            encode_group=converters.encode_group_parts,
        )
        self.leasing = leasing = Leasing(self.store, self.clock, self.notifier,
                                         patterns=self.patterns,
                                         on_leased=self.reclaimer.note_lease,
                                         max_waiting=config.max_waiting_leases)
        self.shutdown_gate = ShutdownGate()
        reader = TaskReader(redis, keys, self.scripts)
        queue_settings = QueueSettingsStore(redis, keys)
        self.admin = admin = Admin(self.store, reader, self.clock, queue_settings)
        self.queue_settings = QueueSettingsService(queue_settings)
        self.groups = Groups(GroupStore(redis, self.scripts, keys), reader, self.clock,
                             on_flushed=self.notifier.wake)
        self.aggregator = Aggregator(self.groups, self.clock)
        self.store.on_group_due = self.aggregator.note_due
        self.schedules = Schedules(
            ScheduleStore(redis, self.scripts, keys), self.store, producer, self.clock,
            on_enqueued=self.notifier.wake, on_changed=lambda: self.scheduler.poke(),
        )
        self.scheduler = Scheduler(self.schedules, self.clock)
        self.workers = WorkerRegistry(redis, self.scripts, keys, self.clock, self.notifier,
                                      ttl_ms=int(config.worker_ttl_seconds * 1000))
        leasing.holds_back = self.workers.commanded
        self.operations = Operations(redis, self.scripts, keys, self.store, reader, self.clock)
        self.broker_servicer = BrokerServicer(producer, leasing, config.max_payload_bytes,
                                              self.workers)
        self.inspect_servicer = InspectServicer(admin, self.groups, self.operations,
                                                self.workers,
                                                self.queue_settings)
        self.schedule_servicer = ScheduleServicer(self.schedules)
        self.schedule_file = (None if config.schedules_file is None
                              else ScheduleFileSync(config.schedules_file, self.schedules))
        self.queue_settings_file = (
            None if config.queue_settings_file is None
            else QueueSettingsFileSync(config.queue_settings_file,
                                       QueueSettingsService(queue_settings),
                                       group_converters.settings_update))

    def dashboard_services(self, version: str) -> DashboardServices:
        """The domain services the web dashboard reads and acts through."""
        from leasq_broker.dashboard.services import DashboardServices

        return DashboardServices(
            admin=self.admin, operations=self.operations, workers=self.workers,
            schedules=self.schedules, groups=self.groups, queue_settings=self.queue_settings,
            clock=self.clock, started_at_ms=int(time.time() * 1000), version=version,
        )

    async def start(self) -> None:
        """Load scripts, sync the clock with Redis, apply the schedules file, start the notifier
        and background loops."""
        await self.scripts.load()
        await migrate_layout(self._redis, self.scripts, self.keys)  # once, for layout-1 data
        if self._redis_clock is not None:
            await self._redis_clock.sync(self._redis)
        if self.queue_settings_file is not None:
            await self.queue_settings_file.apply()  # a bad file stops the start here
            self.queue_settings_file.start()
        if self.schedule_file is not None:
            await self.schedule_file.apply()  # a bad file stops the start here
            self.schedule_file.start()
        await self.due_index.build()  # once, for data written before the due indexes
        await self.notifier.start()
        for loop in self._loops():
            loop.start()

    def begin_shutdown(self) -> None:
        """The first step of a shutdown, before the server stops: calls that still arrive are
        answered UNAVAILABLE, and every waiting long-poll Lease answers now, empty."""
        self.shutdown_gate.close()
        self.leasing.begin_shutdown()

    async def stop(self) -> None:
        """Stop background loops and the notifier; the caller closes Redis."""
        if self.schedule_file is not None:
            await self.schedule_file.stop()
        if self.queue_settings_file is not None:
            await self.queue_settings_file.stop()
        for loop in self._loops():
            await loop.stop()
        await self.workers.stop()
        await self.notifier.stop()
        await self.scripts.aclose()

    def _loops(self) -> tuple[BackgroundLoop, ...]:
        return (self.reclaimer, self.forwarder, self.janitor, self.scheduler, self.aggregator,
                self.pattern_refresher)
