"""Group aggregation methods of :class:`Client` and :class:`AsyncClient` (mixed in).

Queue settings (read and update) and the group listings are idempotent and retried on
UNAVAILABLE like the Inspect reads; :meth:`flush_group` and :meth:`delete_group` are never
retried automatically (a retry of a flush that went through would answer
:class:`GroupNotFound`, or flush members that joined since).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from leasq.v1 import inspect_service_pb2 as pb
from leasq.v1 import inspect_service_pb2_grpc as pb_grpc
from leasq_sdk.base import DEFAULT_PAGE_SIZE
from leasq_sdk.groups import (
    FlushedGroup,
    GroupInfo,
    GroupPage,
    QueueSettings,
    RateSetting,
    Setting,
    SizeSetting,
    flushed,
    group_page,
    group_ref,
    members_page,
    queue_settings,
    settings_update,
)
from leasq_sdk.models import TaskInfo, TaskPage


class GroupMethods:
    """Sync group calls; the client provides ``_invoke`` and ``_inspect_stub``."""

    _invoke: Callable[..., Any]

    def _inspect_stub(self) -> pb_grpc.InspectServiceStub:
        raise NotImplementedError

    def queue_settings(self, queue: str, *, rpc_timeout: float | None = None) -> QueueSettings:
        """A queue's settings in force, defaults filled in (any valid queue name)."""
        request = pb.GetQueueSettingsRequest(queue=queue)
        response = self._invoke(self._inspect_stub().GetQueueSettings, request, rpc_timeout)
        return queue_settings(queue, response.settings)

    def update_queue_settings(
        self,
        queue: str,
        *,
        group_grace: Setting | None = None,
        group_max_delay: Setting | None = None,
        group_max_size: SizeSetting | None = None,
        rate_limit: RateSetting | None = None,
        max_active: SizeSetting | None = None,
        per_key_limit: SizeSetting | None = None,
        rpc_timeout: float | None = None,
    ) -> QueueSettings:
        """Change the given settings only (seconds or timedelta; :data:`DEFAULT` resets one)
        and return the settings now in force; effective at once on every broker replica.

        ``group_grace``: flush a group quiet this long (10 ms - 24 h, default 5 s);
        ``group_max_delay``: flush a group whose first member waited this long (10 ms - 7 days,
        default 60 s); ``group_max_size``: flush a group of this many members (1-10,000,
        default 100). Flow control: ``rate_limit`` at most ``per_second`` leases per second
        (0.001-1,000,000), as ``per_second`` or ``(per_second, burst)``; ``max_active`` at
        most this many tasks ACTIVE at once (1-1,000,000); ``per_key_limit`` at most this many
        tasks of one concurrency key ACTIVE at once (1-10,000, default 1); all cluster-wide.
        Out of range: :class:`InvalidArgument` naming the field, e.g.
        ``settings.groups.grace_period``. At least one setting must be given (``TypeError``).
        """
        request = settings_update(queue, group_grace=group_grace,
                                  group_max_delay=group_max_delay, group_max_size=group_max_size,
                                  rate_limit=rate_limit, max_active=max_active,
                                  per_key_limit=per_key_limit)
        response = self._invoke(self._inspect_stub().UpdateQueueSettings, request, rpc_timeout)
        return queue_settings(queue, response.settings)

    def list_groups(self, queue: str, *, page_size: int = DEFAULT_PAGE_SIZE,
                    page_token: str = "", rpc_timeout: float | None = None) -> GroupPage:
        """One page of a queue's waiting groups, largest first."""
        request = pb.ListGroupsRequest(queue=queue, page_size=page_size, page_token=page_token)
        return group_page(self._invoke(self._inspect_stub().ListGroups, request, rpc_timeout))

    def iter_groups(self, queue: str, *, page_size: int = DEFAULT_PAGE_SIZE,
                    rpc_timeout: float | None = None) -> Iterator[GroupInfo]:
        """Every waiting group of a queue, fetching pages as the iteration goes."""
        token = ""
        while True:
            page = self.list_groups(queue, page_size=page_size, page_token=token,
                                    rpc_timeout=rpc_timeout)
            yield from page.groups
            token = page.next_page_token
            if not token:
                return

    def group_members(self, queue: str, type: str, group: str, *,
                      page_size: int = DEFAULT_PAGE_SIZE, page_token: str = "",
                      rpc_timeout: float | None = None) -> TaskPage:
        """One page of a group's members (tasks in state AGGREGATING), in joining order."""
        request = pb.ListGroupMembersRequest(group=group_ref(queue, type, group),
                                             page_size=page_size, page_token=page_token)
        return members_page(self._invoke(self._inspect_stub().ListGroupMembers, request,
                                         rpc_timeout))

    def iter_group_members(self, queue: str, type: str, group: str, *,
                           page_size: int = DEFAULT_PAGE_SIZE,
                           rpc_timeout: float | None = None) -> Iterator[TaskInfo]:
        """Every member of a group, fetching pages as the iteration goes."""
        token = ""
        while True:
            page = self.group_members(queue, type, group, page_size=page_size,
                                      page_token=token, rpc_timeout=rpc_timeout)
            yield from page.tasks
            token = page.next_page_token
            if not token:
                return

    def flush_group(self, queue: str, type: str, group: str, *,
                    rpc_timeout: float | None = None) -> FlushedGroup:
        """Flush a group now, whatever the settings: its members become one pending task.
        :class:`GroupNotFound` for an empty or unknown group."""
        request = pb.FlushGroupRequest(group=group_ref(queue, type, group))
        return flushed(self._invoke(self._inspect_stub().FlushGroup, request, rpc_timeout))

    def delete_group(self, queue: str, type: str, group: str, *,
                     rpc_timeout: float | None = None) -> int:
        """Delete a group and its members; how many members were deleted.
        :class:`GroupNotFound` for an unknown group."""
        request = pb.DeleteGroupRequest(group=group_ref(queue, type, group))
        response = self._invoke(self._inspect_stub().DeleteGroup, request, rpc_timeout)
        return int(response.deleted)


class AsyncGroupMethods:
    """The same calls for the asyncio client, awaited."""

    _invoke: Callable[..., Awaitable[Any]]

    def _inspect_stub(self) -> pb_grpc.InspectServiceAsyncStub:
        raise NotImplementedError

    async def queue_settings(self, queue: str, *, rpc_timeout: float | None = None
                             ) -> QueueSettings:
        """See :meth:`Client.queue_settings`."""
        request = pb.GetQueueSettingsRequest(queue=queue)
        response = await self._invoke(self._inspect_stub().GetQueueSettings, request,
                                      rpc_timeout)
        return queue_settings(queue, response.settings)

    async def update_queue_settings(
        self,
        queue: str,
        *,
        group_grace: Setting | None = None,
        group_max_delay: Setting | None = None,
        group_max_size: SizeSetting | None = None,
        rate_limit: RateSetting | None = None,
        max_active: SizeSetting | None = None,
        per_key_limit: SizeSetting | None = None,
        rpc_timeout: float | None = None,
    ) -> QueueSettings:
        """See :meth:`Client.update_queue_settings`."""
        request = settings_update(queue, group_grace=group_grace,
                                  group_max_delay=group_max_delay, group_max_size=group_max_size,
                                  rate_limit=rate_limit, max_active=max_active,
                                  per_key_limit=per_key_limit)
        response = await self._invoke(self._inspect_stub().UpdateQueueSettings, request,
                                      rpc_timeout)
        return queue_settings(queue, response.settings)

    async def list_groups(self, queue: str, *, page_size: int = DEFAULT_PAGE_SIZE,
                          page_token: str = "", rpc_timeout: float | None = None) -> GroupPage:
        """See :meth:`Client.list_groups`."""
        request = pb.ListGroupsRequest(queue=queue, page_size=page_size, page_token=page_token)
        return group_page(await self._invoke(self._inspect_stub().ListGroups, request,
                                             rpc_timeout))

    async def iter_groups(self, queue: str, *, page_size: int = DEFAULT_PAGE_SIZE,
                          rpc_timeout: float | None = None) -> AsyncIterator[GroupInfo]:
        """See :meth:`Client.iter_groups`."""
        token = ""
        while True:
            page = await self.list_groups(queue, page_size=page_size, page_token=token,
                                          rpc_timeout=rpc_timeout)
            for group in page.groups:
                yield group
            token = page.next_page_token
            if not token:
                return

    async def group_members(self, queue: str, type: str, group: str, *,
                            page_size: int = DEFAULT_PAGE_SIZE, page_token: str = "",
                            rpc_timeout: float | None = None) -> TaskPage:
        """See :meth:`Client.group_members`."""
        request = pb.ListGroupMembersRequest(group=group_ref(queue, type, group),
                                             page_size=page_size, page_token=page_token)
        return members_page(await self._invoke(self._inspect_stub().ListGroupMembers, request,
                                               rpc_timeout))

    async def iter_group_members(self, queue: str, type: str, group: str, *,
                                 page_size: int = DEFAULT_PAGE_SIZE,
                                 rpc_timeout: float | None = None) -> AsyncIterator[TaskInfo]:
        """See :meth:`Client.iter_group_members`."""
        token = ""
        while True:
            page = await self.group_members(queue, type, group, page_size=page_size,
                                            page_token=token, rpc_timeout=rpc_timeout)
            for task in page.tasks:
                yield task
            token = page.next_page_token
            if not token:
                return

    async def flush_group(self, queue: str, type: str, group: str, *,
                          rpc_timeout: float | None = None) -> FlushedGroup:
        """See :meth:`Client.flush_group`."""
        request = pb.FlushGroupRequest(group=group_ref(queue, type, group))
        return flushed(await self._invoke(self._inspect_stub().FlushGroup, request,
                                          rpc_timeout))

    async def delete_group(self, queue: str, type: str, group: str, *,
                           rpc_timeout: float | None = None) -> int:
        """See :meth:`Client.delete_group`."""
        request = pb.DeleteGroupRequest(group=group_ref(queue, type, group))
        response = await self._invoke(self._inspect_stub().DeleteGroup, request, rpc_timeout)
        return int(response.deleted)
