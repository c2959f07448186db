"""The blog's HTTP service: publish posts, subscribe, read, follow email links, see stats.

``python -m examples.blog.app --port 8000`` serves it with uvicorn (configuration from the
environment, see :mod:`examples.blog.settings`). Endpoints:

- ``POST /subscribers`` ``{"email": ...}``: subscribe (idempotent per address).
- ``POST /posts`` ``{"title": ..., "body": ...}``, admin only (``Authorization: Bearer <token>``):
  store the post and queue its notification (one ``blog:notify_post`` task).
- ``POST /posts/{id}/notify``, admin only: queue the notification again if it was never queued
  (the task id ``post-<id>`` makes a second call harmless).
- ``GET /posts/{id}``: the post; queues a ``blog:track_read`` with the visit's UTM parameters.
- ``GET /r/{token}``: the link in an email; queues a ``blog:track_click`` and redirects to the
  post with the same query string.
- ``GET /posts/{id}/stats``: reads, clicks, emails sent, reads per UTM source/medium/campaign.

Analytics are best effort: when the broker cannot take a tracking task, the reader still gets
the post and the failure is logged. Publishing is not: its answer says whether the notification
was queued.
"""

from __future__ import annotations

import argparse
import hmac
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Annotated, Any

import structlog
import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Request, status
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field

from examples.blog import db, stats_db
from examples.blog.links import Utm, parse_click_token
from examples.blog.settings import Settings
from examples.blog.tasks import (
    NOTIFY_POST,
    TRACK_CLICK,
    TRACK_READ,
    NotifyPost,
    TrackClick,
    TrackRead,
    click_task_id,
    notify_task_id,
    read_task_id,
)
from leasq_sdk import Client, LeasqError, TaskIdConflict

#: Deadline of every broker call made while answering a request, in seconds.
BROKER_CALL_TIMEOUT = 3.0

log = structlog.get_logger("blog.app")
router = APIRouter()


@dataclass(frozen=True, slots=True)
class Blog:
    """What the endpoints need: settings and a producer client (thread-safe)."""

    settings: Settings
    client: Client


class PostIn(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1)


class SubscriberIn(BaseModel):
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$", max_length=254)


def get_blog(request: Request) -> Blog:
    blog: Blog = request.app.state.blog
    return blog


BlogDep = Annotated[Blog, Depends(get_blog)]


def require_admin(blog: BlogDep, authorization: Annotated[str, Header()] = "") -> None:
    """Refuse the request unless it carries ``Authorization: Bearer <admin token>``."""
    expected = f"Bearer {blog.settings.admin_token}"
    if not hmac.compare_digest(authorization.encode(), expected.encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "admin token required",
            headers={"WWW-Authenticate": "Bearer"},
        )


@router.post("/subscribers", status_code=status.HTTP_201_CREATED)
def subscribe(body: SubscriberIn, blog: BlogDep) -> dict[str, Any]:
    with db.connect(blog.settings.db_path) as conn:
        return asdict(db.add_subscriber(conn, body.email))


@router.post("/posts", status_code=status.HTTP_201_CREATED, dependencies=[Depends(require_admin)])
def publish(body: PostIn, blog: BlogDep) -> dict[str, Any]:
    """Store the post, then queue its notification; the answer says whether that worked."""
    with db.connect(blog.settings.db_path) as conn:
        post = db.create_post(conn, body.title, body.body)
    try:
        notification = queue_notification(blog, post.id)
    except LeasqError as err:
        log.warning("notification not queued", post_id=post.id, error=str(err))
        notification = f"not queued ({err}); retry with POST /posts/{post.id}/notify"
    return {**asdict(post), "url": f"/posts/{post.id}", "notification": notification}


@router.post("/posts/{post_id}/notify", dependencies=[Depends(require_admin)])
def notify(post_id: int, blog: BlogDep) -> dict[str, Any]:
    find_post(blog, post_id)
    try:
        notification = queue_notification(blog, post_id)
    except LeasqError as err:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(err)) from err
    return {"post_id": post_id, "notification": notification}


def queue_notification(blog: Blog, post_id: int) -> str:
    """Enqueue ``blog:notify_post`` under the post's own task id: at most once per post."""
    try:
        NOTIFY_POST.enqueue(blog.client, NotifyPost(post_id), task_id=notify_task_id(post_id))
    except TaskIdConflict:
        return "already queued"
    return "queued"


@router.get("/posts/{post_id}")
def read_post(post_id: int, request: Request, blog: BlogDep) -> dict[str, Any]:
    post = find_post(blog, post_id)
    utm = Utm.from_query(request.query_params) or Utm("", "", "")
    event = TrackRead(new_event_id(), post_id, utm.source, utm.medium, utm.campaign)
    track(lambda: TRACK_READ.enqueue(blog.client, event, task_id=read_task_id(event.event_id)))
    return asdict(post)


@router.get("/r/{token}")
def follow_link(token: str, request: Request, blog: BlogDep) -> RedirectResponse:
    """An email link: count the click, send the reader on to the post (query kept)."""
    parsed = parse_click_token(blog.settings.link_secret, token)
    if parsed is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "unknown link")
    post_id, subscriber_id = parsed
    find_post(blog, post_id)
    event = TrackClick(new_event_id(), post_id, subscriber_id)
    track(lambda: TRACK_CLICK.enqueue(blog.client, event, task_id=click_task_id(event.event_id)))
    query = request.url.query
    target = f"/posts/{post_id}" + (f"?{query}" if query else "")
    return RedirectResponse(target, status_code=status.HTTP_302_FOUND)


@router.get("/posts/{post_id}/stats")
def post_stats(post_id: int, blog: BlogDep) -> dict[str, Any]:
    find_post(blog, post_id)
    with db.connect(blog.settings.db_path) as conn:
        return stats_db.post_stats(conn, post_id).to_json()


def find_post(blog: Blog, post_id: int) -> db.Post:
    with db.connect(blog.settings.db_path) as conn:
        post = db.get_post(conn, post_id)
    if post is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no post {post_id}")
    return post


def new_event_id() -> str:
    """The id of one analytic event; it becomes the task id, so it must never repeat."""
    return uuid.uuid4().hex


def track(enqueue: Callable[[], object]) -> None:
    """Run a tracking enqueue; a refusal or an unreachable broker is logged, not raised."""
    try:
        enqueue()
    except LeasqError as err:
        log.warning("analytic event dropped", error=str(err))


def create_app(settings: Settings | None = None) -> FastAPI:
    """The ASGI app; ``settings`` default to :meth:`Settings.from_env` at startup."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resolved = settings or Settings.from_env()
        db.create_schema(resolved.db_path)
        client = Client(resolved.broker, token=resolved.broker_token, timeout=BROKER_CALL_TIMEOUT)
        app.state.blog = Blog(resolved, client)
        try:
            yield
        finally:
            client.close()

    app = FastAPI(title="Leasq blog example", lifespan=lifespan)
    app.include_router(router)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the blog example over HTTP.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
