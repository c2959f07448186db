"""Puts the dashboard on the broker's HTTP app: static assets, login, and every view module."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from leasq_broker.dashboard import access
from leasq_broker.dashboard.access import PREFIX
from leasq_broker.dashboard.rendering import ENVIRONMENT, environment, render
from leasq_broker.dashboard.routes import SERVICES, Routes
from leasq_broker.dashboard.services import DashboardServices
from leasq_broker.dashboard.views import VIEWS

STATIC = Path(__file__).parent / "static"


def normalize_prefix(path: str) -> str:
    """``"leasq"``, ``"/leasq"`` and ``"/leasq/"`` all become ``"/leasq/"``; ``""`` is ``"/"``.
    Raises ValueError for a path a reverse proxy could not mean (query, fragment, spaces)."""
    cleaned = "/" + path.strip().strip("/")
    if any(c in cleaned for c in "?#% \t\\"):
        raise ValueError(f"dashboard path must be a plain URL path like /leasq, got {path!r}")
    return cleaned if cleaned.endswith("/") else cleaned + "/"


def install(app: web.Application, dashboard: DashboardServices, prefix: str = "/") -> str:
    """Add the dashboard under ``prefix`` to ``app`` (the broker's HTTP app, whose authorizer it
    shares); returns the normalized prefix."""
    prefix = normalize_prefix(prefix)
    app[PREFIX] = prefix
    app[SERVICES] = dashboard
    app[ENVIRONMENT] = environment()
    app.router.add_static(prefix + "static/", STATIC, name="dashboard-static")
    routes = Routes(app.router, prefix)
    routes.get("login", _login_form)
    routes.post("login", _login)
    routes.post("logout", _logout)
    if prefix != "/":
        app.router.add_get(prefix.rstrip("/"), _to_prefix)
    for view in VIEWS:
        view.register(routes)
    return prefix


async def _to_prefix(request: web.Request) -> web.StreamResponse:
    raise web.HTTPMovedPermanently(access.prefix_of(request))


def _anonymous(request: web.Request) -> access.Viewer:
    return access.Viewer(None, False, access.csrf_value(request), False)


async def _login_form(request: web.Request) -> web.StreamResponse:
    return render(request, "login.html", _anonymous(request), error=None)


async def _login(request: web.Request) -> web.StreamResponse:
    if not await access.csrf_ok(request):
        return render(request, "login.html", _anonymous(request), status=403,
                      error="The form expired: please sign in again.")  # fmt: skip
    token = str((await request.post()).get("token", "")).strip()
    error = "Enter a token." if not token else access.login_token_error(request, token)
    if error is not None:
        return render(request, "login.html", _anonymous(request), status=401, error=error)
    response = web.HTTPSeeOther(access.prefix_of(request))
    access.set_session(request, response, token)
    return response


async def _logout(request: web.Request) -> web.StreamResponse:
    if not await access.csrf_ok(request):
        raise web.HTTPForbidden(text="missing or wrong CSRF token: reload the page and retry\n")
    response = web.HTTPSeeOther(f"{access.prefix_of(request)}login")
    access.clear_session(request, response)
    return response
