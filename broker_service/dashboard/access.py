"""Who may see and change what in the dashboard: the broker's tokens and roles, a login cookie,
and CSRF protection for every changing action.

The login form takes one of the broker's bearer tokens and keeps it in an http-only,
``SameSite=Strict`` cookie; every request is then authorized afresh by the same
:class:`~leasq_broker.edge.roles.Authorizer` as the gRPC edge, naming the gRPC method whose
effect a page or action has. So a token removed from the tokens file stops working in the
dashboard at once, a ``reader`` token sees everything and changes nothing, and queue-scoped
tokens open only the pages of the queues they may read (the overview, like ListQueues, names
every queue). Without tokens configured the dashboard is open, like
the gRPC port (bind it to loopback: the default).

CSRF: a random value in a ``SameSite=Strict`` cookie must come back in every POST (form field
``csrf`` or header ``X-CSRF-Token``); a cross-site page can neither read the cookie nor make the
browser send it. Every replica can check it: there is no server-side session state.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from aiohttp import web

from leasq_broker.edge.roles import Authorizer, Verdict
from leasq_broker.observability.http import AUTHORIZER, bearer_token

SESSION_COOKIE = "leasq_session"
CSRF_COOKIE = "leasq_csrf"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
# Reading pages shows what ListQueues shows (every queue's name and numbers): role reader. A
# page of one queue (its tasks, a task) shows what GetQueueStats and ListTasks show, so a token
# limited to some queues reads only their pages.
READ_METHOD = "/leasq.v1.InspectService/ListQueues"
READ_QUEUE_METHOD = "/leasq.v1.InspectService/ListTasks"
# A token that may run bulk moves (admin) sees the action buttons.
ACT_PROBE_METHOD = "/leasq.v1.InspectService/RunAllTasks"
PREFIX = web.AppKey("dashboard_prefix", str)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Viewer:
    """The person behind a request: their token (None when the dashboard is open), whether they
    may act (admin) and the CSRF value their forms must carry."""

    token: str | None
    can_act: bool
    csrf: str
    logged_in: bool


def _authorizer(request: web.Request) -> Authorizer | None:
    return request.app.get(AUTHORIZER)


def _token(request: web.Request) -> str | None:
    return request.cookies.get(SESSION_COOKIE) or bearer_token(request)


def csrf_value(request: web.Request) -> str:
    """This browser's CSRF value: the cookie's, or a new one that :func:`remember_csrf` sets."""
    known = request.cookies.get(CSRF_COOKIE) or request.get("new_csrf")
    if known is None:
        known = request["new_csrf"] = secrets.token_urlsafe(32)
    return str(known)


def remember_csrf(request: web.Request, response: web.StreamResponse) -> None:
    """Set the CSRF cookie on ``response`` if this request made a new value."""
    new = request.get("new_csrf")
    if new is not None:
        response.set_cookie(CSRF_COOKIE, new, path=request.app[PREFIX], httponly=True,
                            samesite="Strict", secure=request.secure)  # fmt: skip


def prefix_of(request: web.Request) -> str:
    """The dashboard's path prefix, always ending in ``/``."""
    return request.app[PREFIX]


def viewer(request: web.Request, queues: Iterable[str] = ()) -> Viewer:
    """The viewer of a page, or an HTTP error: a redirect to the login form (no or bad token),
    403 (a token that may not read ``queues``)."""
    authorizer = _authorizer(request)
    csrf = csrf_value(request)
    if authorizer is None:
        return Viewer(None, True, csrf, False)
    token = _token(request)
    queues = list(queues)
    decision = authorizer.check(token, READ_QUEUE_METHOD if queues else READ_METHOD, queues)
    if decision.verdict is Verdict.UNAUTHENTICATED:
        raise web.HTTPSeeOther(f"{prefix_of(request)}login")
    if not decision.allowed:
        raise web.HTTPForbidden(text=decision.message + "\n")
    can_act = authorizer.check(token, ACT_PROBE_METHOD).allowed
    return Viewer(token, can_act, csrf, True)


async def check_action(request: web.Request, method: str, queues: Iterable[str] = ()) -> None:
    """Refuse a changing action unless it is a POST with the right CSRF value from a token that
    may call the gRPC ``method`` on ``queues``: 403 with the reason otherwise, 401 without a
    valid token. Reads the form, so handlers use ``await request.post()`` afterwards."""
    if request.method != "POST":
        raise web.HTTPMethodNotAllowed(request.method, ["POST"])
    if not await csrf_ok(request):
        raise web.HTTPForbidden(text="missing or wrong CSRF token: reload the page and retry\n")
    authorizer = _authorizer(request)
    if authorizer is None:
        return
    decision = authorizer.check(_token(request), method, queues)
    if decision.verdict is Verdict.UNAUTHENTICATED:
        raise web.HTTPUnauthorized(text=decision.message + "\n")
    if not decision.allowed:
        raise web.HTTPForbidden(text=decision.message + "\n")


async def csrf_ok(request: web.Request) -> bool:
    """Does this POST carry (form field or header) the CSRF value of its cookie?"""
    form = await request.post()
    sent = request.headers.get(CSRF_HEADER) or str(form.get(CSRF_FIELD, ""))
    expected = request.cookies.get(CSRF_COOKIE, "")
    return bool(expected) and hmac.compare_digest(sent.encode(), expected.encode())


def login_token_error(request: web.Request, token: str) -> str | None:
    """Why ``token`` may not open the dashboard, or None when it may."""
    authorizer = _authorizer(request)
    if authorizer is None:
        return None
    decision = authorizer.check(token, READ_METHOD)
    if decision.allowed:
        return None
    if decision.verdict is Verdict.UNAUTHENTICATED:
        return "This token is not valid on this broker."
    return "This token may not read queues (it needs role reader or admin)."


def set_session(request: web.Request, response: web.StreamResponse, token: str) -> None:
    response.set_cookie(SESSION_COOKIE, token, path=prefix_of(request), httponly=True,
                        samesite="Strict", secure=request.secure)  # fmt: skip


def clear_session(request: web.Request, response: web.StreamResponse) -> None:
    response.del_cookie(SESSION_COOKIE, path=prefix_of(request))
