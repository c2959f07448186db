"""Group aggregation over gRPC on a real broker: what Enqueue refuses, what Lease hands out,
and what the Inspect calls show and do."""

from __future__ import annotations

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.field_mask_pb2 import FieldMask
from rpc_testing import lease_request, ref, refusal, spec

from leasq.v1 import broker_service_pb2 as bpb
from leasq.v1 import inspect_service_pb2 as ipb
from leasq.v1 import task_pb2
from leasq.v1.broker_service_pb2_grpc import BrokerServiceStub
from leasq.v1.inspect_service_pb2_grpc import InspectServiceStub

QUEUE = "digests"
HOUR = Duration(seconds=3600)


def grouped(n: int, group: str = "user:1", task_type: str = "email:digest"
            ) -> task_pb2.TaskSpec:
    return spec(task_type, queue=QUEUE, task_id=f"m{n}", payload=f"p{n}".encode(), group=group)


def gref(group: str = "user:1", task_type: str = "email:digest") -> ipb.GroupRef:
    return ipb.GroupRef(queue=QUEUE, type=task_type, group=group)


async def hold(inspect: InspectServiceStub) -> None:
    """Groups of QUEUE are flushed only by size or by hand during the test."""
    await inspect.UpdateQueueSettings(ipb.UpdateQueueSettingsRequest(
        queue=QUEUE, settings=ipb.QueueSettings(groups=ipb.GroupSettings(
            grace_period=HOUR, max_delay=HOUR))))


async def test_a_grouped_task_with_a_bad_key_or_a_timing_option_is_refused_naming_the_field(
    broker_stub: BrokerServiceStub,
) -> None:
    cases = {
        "task.group": spec(group="no spaces"),
        "task.process_in": spec(group="g", process_in=Duration(seconds=1)),
        "task.process_at": spec(group="g", process_at={"seconds": 1}),
        "task.unique_ttl": spec(group="g", unique_ttl=Duration(seconds=60)),
    }
    for field, task in cases.items():
        refused = await refusal(broker_stub.Enqueue(bpb.EnqueueRequest(task=task)))
        assert (refused.code, refused.field) == (grpc.StatusCode.INVALID_ARGUMENT, field)
    long_key = await refusal(broker_stub.Enqueue(bpb.EnqueueRequest(task=spec(group="k" * 257))))
    assert long_key.field == "task.group"


async def test_settings_read_defaults_and_change_by_mask_within_bounds(
    inspect_stub: InspectServiceStub,
) -> None:
    got = await inspect_stub.GetQueueSettings(ipb.GetQueueSettingsRequest(queue=QUEUE))
    groups = got.settings.groups
    assert (groups.grace_period.seconds, groups.max_delay.seconds, groups.max_size) == (5, 60, 100)
    changed = await inspect_stub.UpdateQueueSettings(ipb.UpdateQueueSettingsRequest(
        queue=QUEUE, settings=ipb.QueueSettings(groups=ipb.GroupSettings(
            grace_period=Duration(seconds=2), max_size=7)),
        update_mask=FieldMask(paths=["groups.max_size"])))
    now = changed.settings.groups
    assert (now.grace_period.seconds, now.max_size) == (5, 7)
    reset = await inspect_stub.UpdateQueueSettings(ipb.UpdateQueueSettingsRequest(
        queue=QUEUE, update_mask=FieldMask(paths=["groups"])))
    assert reset.settings.groups.max_size == 100
    for settings, mask, field in (
        (ipb.GroupSettings(grace_period=Duration(nanos=1_000_000)), [],
         "settings.groups.grace_period"),
        (ipb.GroupSettings(max_delay=Duration(seconds=8 * 86400)), [], "settings.groups.max_delay"),
        (ipb.GroupSettings(max_size=10_001), [], "settings.groups.max_size"),
        (ipb.GroupSettings(), ["groups.nope"], "update_mask.paths[0]"),
    ):
        refused = await refusal(inspect_stub.UpdateQueueSettings(ipb.UpdateQueueSettingsRequest(
            queue=QUEUE, settings=ipb.QueueSettings(groups=settings),
            update_mask=FieldMask(paths=mask))))
        assert (refused.code, refused.field) == (grpc.StatusCode.INVALID_ARGUMENT, field)


async def test_a_flushed_group_is_leased_as_one_task_with_its_group_and_members(
    broker_stub: BrokerServiceStub, inspect_stub: InspectServiceStub,
) -> None:
    await inspect_stub.UpdateQueueSettings(ipb.UpdateQueueSettingsRequest(
        queue=QUEUE, settings=ipb.QueueSettings(groups=ipb.GroupSettings(
            grace_period=Duration(nanos=200_000_000)))))
    batch = await broker_stub.EnqueueBatch(bpb.EnqueueBatchRequest(
        tasks=[grouped(n) for n in range(3)]))
    assert [r.task.state for r in batch.results] == [task_pb2.TASK_STATE_AGGREGATING] * 3
    leased = await broker_stub.Lease(lease_request(QUEUE, wait=Duration(seconds=10)))
    [task] = leased.tasks
    assert (task.type, task.group, task.payload) == ("email:digest", "user:1", b"")
    assert [(m.id, m.payload) for m in task.members] == [(f"m{n}", f"p{n}".encode())
                                                         for n in range(3)]
    last_join = max(m.enqueued_at.ToMilliseconds() for m in task.members)
    lateness = task.enqueued_at.ToMilliseconds() - (last_join + 200)
    assert 0 <= lateness <= 100, f"flushed {lateness} ms after its due instant"
    acked = await broker_stub.Ack(bpb.AckRequest(worker_id="w1",
                                                 items=[bpb.AckItem(lease=ref(task))]))
    assert not acked.results[0].HasField("error")


async def test_members_are_visible_aggregating_and_leave_only_with_their_group(
    broker_stub: BrokerServiceStub, inspect_stub: InspectServiceStub,
) -> None:
    await hold(inspect_stub)
    await broker_stub.EnqueueBatch(bpb.EnqueueBatchRequest(
        tasks=[grouped(n, "a") for n in range(3)] + [grouped(n, "b") for n in range(3, 5)]))
    member = (await inspect_stub.GetTask(ipb.GetTaskRequest(queue=QUEUE, task_id="m1"))).task
    assert (member.state, member.group, member.payload) == (
        task_pb2.TASK_STATE_AGGREGATING, "a", b"p1")
    conflict = await refusal(broker_stub.Enqueue(bpb.EnqueueRequest(task=grouped(1, "b"))))
    assert (conflict.code, conflict.reason) == (grpc.StatusCode.ALREADY_EXISTS,
                                                "TASK_ID_CONFLICT")
    deleted = await refusal(inspect_stub.DeleteTask(ipb.DeleteTaskRequest(queue=QUEUE,
                                                                          task_id="m1")))
    assert (deleted.code, deleted.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "WRONG_STATE")
    stats = (await inspect_stub.GetQueueStats(ipb.GetQueueStatsRequest(queue=QUEUE))).stats
    listed = await inspect_stub.ListTasks(ipb.ListTasksRequest(
        queue=QUEUE, state=task_pb2.TASK_STATE_AGGREGATING, page_size=4))
    rest = await inspect_stub.ListTasks(ipb.ListTasksRequest(
        queue=QUEUE, state=task_pb2.TASK_STATE_AGGREGATING, page_token=listed.next_page_token))
    assert stats.aggregating == 5 == listed.total_size
    assert [t.id for t in listed.tasks] + [t.id for t in rest.tasks] == [
        "m0", "m1", "m2", "m3", "m4"]


async def test_groups_are_listed_largest_first_with_their_times_and_members_in_join_order(
    broker_stub: BrokerServiceStub, inspect_stub: InspectServiceStub,
) -> None:
    await hold(inspect_stub)
    sizes = {"small": 1, "large": 3, "middle": 2}
    n = 0
    for group, size in sizes.items():
        for _ in range(size):
            await broker_stub.Enqueue(bpb.EnqueueRequest(task=grouped(n, group)))
            n += 1
    first = await inspect_stub.ListGroups(ipb.ListGroupsRequest(queue=QUEUE, page_size=2))
    second = await inspect_stub.ListGroups(ipb.ListGroupsRequest(
        queue=QUEUE, page_size=2, page_token=first.next_page_token))
    listed = list(first.groups) + list(second.groups)
    assert [(g.group, g.size) for g in listed] == [("large", 3), ("middle", 2), ("small", 1)]
    assert first.total_size == 3 and second.next_page_token == ""
    large = listed[0]
    assert large.type == "email:digest" and large.queue == QUEUE
    assert large.first_joined_at.ToMilliseconds() <= large.last_joined_at.ToMilliseconds()
    # grace and max delay are both an hour: the max delay after the first join comes first
    assert large.flush_at.ToMilliseconds() == large.first_joined_at.ToMilliseconds() + 3_600_000
    members = await inspect_stub.ListGroupMembers(ipb.ListGroupMembersRequest(
        group=gref("large")))
    assert [t.id for t in members.tasks] == ["m1", "m2", "m3"] and members.total_size == 3


async def test_flush_group_and_delete_group_act_at_once_and_refuse_unknown_groups(
    broker_stub: BrokerServiceStub, inspect_stub: InspectServiceStub,
) -> None:
    await hold(inspect_stub)
    await broker_stub.EnqueueBatch(bpb.EnqueueBatchRequest(
        tasks=[grouped(n, "a") for n in range(2)] + [grouped(n, "b") for n in range(2, 5)]))
    flushed = await inspect_stub.FlushGroup(ipb.FlushGroupRequest(group=gref("a")))
    assert flushed.members == 2 and flushed.task.state == task_pb2.TASK_STATE_PENDING
    info = (await inspect_stub.GetTask(ipb.GetTaskRequest(queue=QUEUE,
                                                          task_id=flushed.task.id))).task
    assert [m.id for m in info.members] == ["m0", "m1"] and info.group == "a"
    deleted = await inspect_stub.DeleteGroup(ipb.DeleteGroupRequest(group=gref("b")))
    assert deleted.deleted == 3
    assert (await inspect_stub.GetQueueStats(
        ipb.GetQueueStatsRequest(queue=QUEUE))).stats.aggregating == 0
    for call in (inspect_stub.FlushGroup(ipb.FlushGroupRequest(group=gref("a"))),
                 inspect_stub.DeleteGroup(ipb.DeleteGroupRequest(group=gref("b"))),
                 inspect_stub.FlushGroup(ipb.FlushGroupRequest(group=gref("a", "other")))):
        refused = await refusal(call)
        assert (refused.code, refused.reason) == (grpc.StatusCode.NOT_FOUND, "GROUP_NOT_FOUND")
    missing = await refusal(inspect_stub.FlushGroup(ipb.FlushGroupRequest()))
    assert (missing.code, missing.field) == (grpc.StatusCode.INVALID_ARGUMENT, "group")
