"""Handlers of the ``email`` queue: fan a new post out to subscribers, send each email once.

Run with ``python -m leasq_worker examples.blog.email_worker:registry --queue email``.

Exactly-once effect, and the one window where it is not:

1. ``blog:notify_post`` enqueues one ``blog:send_notification`` per subscriber with the task id
   ``post-<id>-sub-<sid>``. Running the fan-out again (a retry after a crash, a second
   ``POST /posts/{id}/notify``) is answered ``TaskIdConflict`` for every email already queued
   (or completed within the task retention), so it cannot queue an email twice.
2. ``blog:send_notification`` skips a (post, subscriber) pair that the ``deliveries`` table
   already holds, sends otherwise, and records the delivery once the SMTP server has accepted
   the message. A failure before acceptance (SMTP down, timeout, 4xx) sends nothing and
   retries with a short exponential backoff chosen here (``RetryAfter``), not the broker's.

A worker crash *between* the SMTP server accepting the message and the delivery row being
committed is the only way to send twice: the retried task finds no row and sends again. The
deterministic Message-ID lets the receiving side drop that duplicate. Recording *before*
sending would close this window but open a worse one: a crash after the record and before the
send loses the email silently.
"""

from __future__ import annotations

import random
import smtplib
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import structlog

from examples.blog import db, mailer
from examples.blog.context import WorkerContext
from examples.blog.settings import Settings
from examples.blog.tasks import (
    NOTIFY_POST,
    SEND_NOTIFICATION,
    NotifyPost,
    SendNotification,
    send_task_id,
)
from leasq_sdk import LeasqError, TaskIdConflict
from leasq_worker import Registry, RetryAfter, SkipRetry, Task

Result = dict[str, Any]


def retry_delay(retry_count: int, base: float, cap: float) -> float:
    """Seconds before the next attempt: exponential from ``base``, capped, with jitter.

    The jitter (50-100% of the step) keeps a batch of emails that failed together from
    hitting the SMTP server together when it comes back.
    """
    step: float = min(cap, base * 2.0 ** min(retry_count, 30))
    return step * random.uniform(0.5, 1.0)


def fan_out(context: WorkerContext, task: Task) -> Result:
    """Queue one email task per subscriber; the deterministic ids make a re-run harmless."""
    job: NotifyPost = task.decode()
    with db.connect(context.settings.db_path) as conn:
        if db.get_post(conn, job.post_id) is None:
            raise SkipRetry(f"post {job.post_id} does not exist")
        subscribers = db.subscriber_ids(conn)
    requests = [
        SEND_NOTIFICATION.request(
            SendNotification(job.post_id, sid), task_id=send_task_id(job.post_id, sid)
        )
        for sid in subscribers
    ]
    queued = already = 0
    for result in context.client.enqueue_many(requests):
        if isinstance(result, TaskIdConflict):
            already += 1
        elif isinstance(result, LeasqError):
            raise result  # retry the whole fan-out: what was queued now conflicts harmlessly
        else:
            queued += 1
    _log(task).info("notifications queued", post_id=job.post_id, queued=queued, already=already)
    return {"queued": queued, "already_queued": already}


def send_notification(context: WorkerContext, task: Task) -> Result:
    """Send one subscriber's email unless it was sent already; record it once accepted."""
    job: SendNotification = task.decode()
    settings = context.settings
    log = _log(task).bind(post_id=job.post_id, subscriber_id=job.subscriber_id)
    with db.connect(settings.db_path) as conn:
        if db.delivered(conn, job.post_id, job.subscriber_id):
            log.info("notification already delivered")
            return {"sent": False, "reason": "already delivered"}
        post = db.get_post(conn, job.post_id)
        subscriber = db.get_subscriber(conn, job.subscriber_id)
    if post is None or subscriber is None:
        raise SkipRetry("the post or the subscriber no longer exists")
    message = mailer.compose(settings, post, subscriber)
    _deliver(settings, task, message)
    with db.connect(settings.db_path) as conn:
        db.record_delivery(conn, post.id, subscriber.id, str(message["Message-ID"]))
    log.info("notification sent", to=subscriber.email)
    return {"sent": True, "message_id": str(message["Message-ID"])}


def _deliver(settings: Settings, task: Task, message: EmailMessage) -> None:
    """Send through SMTP; a failure becomes SkipRetry (final) or RetryAfter (transient)."""
    try:
        mailer.send(settings, message)
    except (OSError, smtplib.SMTPException) as err:
        if mailer.is_permanent(err):
            raise SkipRetry(f"SMTP refused the message: {err}") from err
        delay = retry_delay(task.retry_count, settings.retry_base, settings.retry_cap)
        where = f"{settings.smtp_host}:{settings.smtp_port}"
        _log(task).warning("smtp unavailable, will retry", smtp=where, delay=round(delay, 2))
        raise RetryAfter(delay, f"SMTP {where} unavailable: {err!r}") from err


def _log(task: Task) -> Any:
    return structlog.get_logger("blog.email").bind(
        task_id=task.id, queue=task.queue, attempt=task.attempt
    )


def build_registry(context: WorkerContext | None = None) -> Registry:
    """The email worker's registry; handlers run in the worker's thread pool (they block)."""
    context = context or WorkerContext()
    handlers = Registry()

    def bound(func: Callable[[WorkerContext, Task], Result]) -> Callable[[Task], Result]:
        return lambda task: func(context, task)

    handlers.add(NOTIFY_POST, bound(fan_out))
    handlers.add(SEND_NOTIFICATION, bound(send_notification))
    return handlers


registry = build_registry()
