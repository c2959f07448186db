"""The blog's task types, declared once and used by the HTTP app and by both workers.

Queue ``email``:
- ``blog:notify_post`` (one per post, task id ``post-<id>``): fans out one
  ``blog:send_notification`` per subscriber.
- ``blog:send_notification`` (task id ``post-<id>-sub-<sid>``): sends one email.

Queue ``analytic``:
- ``blog:track_read`` and ``blog:track_click`` (task id ``read-<event>`` / ``click-<event>``):
  count one read or one click.

Every task id is derived from what the task is about, never random: enqueueing the same thing
twice (a retried HTTP call, a re-run fan-out, the SDK's automatic retry after a broken
connection) is refused by the broker with ``TaskIdConflict`` instead of doing the work twice.
Retention keeps completed email tasks, and so their ids, for a week.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from leasq_sdk import TaskDef

EMAIL_QUEUE = "email"
ANALYTIC_QUEUE = "analytic"
KEEP_EMAIL_TASKS = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class NotifyPost:
    post_id: int


@dataclass(frozen=True, slots=True)
class SendNotification:
    post_id: int
    subscriber_id: int


@dataclass(frozen=True, slots=True)
class TrackRead:
    event_id: str
    post_id: int
    utm_source: str = ""
    utm_medium: str = ""
    utm_campaign: str = ""


@dataclass(frozen=True, slots=True)
class TrackClick:
    event_id: str
    post_id: int
    subscriber_id: int


NOTIFY_POST = TaskDef(
    "blog:notify_post",
    NotifyPost,
    queue=EMAIL_QUEUE,
    max_retry=10,
    timeout=60,
    retention=KEEP_EMAIL_TASKS,
)
SEND_NOTIFICATION = TaskDef(
    "blog:send_notification",
    SendNotification,
    queue=EMAIL_QUEUE,
    max_retry=25,
    timeout=60,
    retention=KEEP_EMAIL_TASKS,
)
TRACK_READ = TaskDef("blog:track_read", TrackRead, queue=ANALYTIC_QUEUE, max_retry=10, timeout=30)
TRACK_CLICK = TaskDef(
    "blog:track_click", TrackClick, queue=ANALYTIC_QUEUE, max_retry=10, timeout=30
)


def notify_task_id(post_id: int) -> str:
    return f"post-{post_id}"


def send_task_id(post_id: int, subscriber_id: int) -> str:
    return f"post-{post_id}-sub-{subscriber_id}"


def read_task_id(event_id: str) -> str:
    return f"read-{event_id}"


def click_task_id(event_id: str) -> str:
    return f"click-{event_id}"
