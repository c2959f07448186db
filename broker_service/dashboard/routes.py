"""How a view module declares its pages and actions: paths under the dashboard's prefix, reads
behind :func:`~leasq_broker.dashboard.access.viewer`, changes behind
:func:`~leasq_broker.dashboard.access.check_action`.

Every handler answers a refusal or a domain error with a page or a status a person can act on;
an unexpected error is logged once and answered 500 without its traceback.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from leasq_broker.dashboard.services import DashboardServices

log = structlog.get_logger(__name__)

SERVICES = web.AppKey("dashboard_services", DashboardServices)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def services(request: web.Request) -> DashboardServices:
    return request.app[SERVICES]


class Routes:
    """Registers a view module's handlers under ``prefix`` (which ends in ``/``)."""

    def __init__(self, router: web.UrlDispatcher, prefix: str) -> None:
        self._router = router
        self.prefix = prefix

    def get(self, path: str, handler: Handler) -> None:
        """A page (``path`` without the leading ``/``; ``""`` is the dashboard's root)."""
        self._router.add_get(self.prefix + path, _shielded(handler), allow_head=False)

    def post(self, path: str, handler: Handler) -> None:
        """A changing action; the handler must call ``check_action`` first."""
        self._router.add_post(self.prefix + path, _shielded(handler))


def _shielded(handler: Handler) -> Handler:
    """HTTP errors pass as they are; anything else is a bug: logged once, answered 500."""

    async def shielded(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except Exception:
            log.exception("dashboard request failed", path=request.path)
            raise web.HTTPInternalServerError(
                text="the dashboard failed to answer; the broker log has the details\n"
            ) from None

    return shielded
