"""The broker's HTTP side: an aiohttp app factory and the server that runs it beside gRPC.

:func:`create_app` builds the application with ``/metrics`` (Prometheus text format) and
``/healthz``; other features (a web dashboard) add their routes to the returned app before
:class:`HttpServer` starts it, and protect them with :func:`guard`, which applies the same
bearer tokens and roles as the gRPC edge by naming the gRPC method whose data a route shows.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from leasq_broker.edge.roles import Authorizer, Verdict

log = structlog.get_logger(__name__)

# /metrics shows queue names and sizes: what ListQueues and GetQueueStats show, role reader.
METRICS_METHOD = "/leasq.v1.InspectService/ListQueues"
AUTHORIZER = web.AppKey("authorizer", Authorizer)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def bearer_token(request: web.Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if any."""
    value = request.headers.get("Authorization", "")
    return value[7:] if value[:7] == "Bearer " else None


def guard(handler: Handler, method: str) -> Handler:
    """``handler`` answered only for tokens that may call the gRPC ``method`` (any queue);
    401 without a valid token, 403 for a token of a role too small. Open when the app has no
    authorizer (no tokens configured)."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        authorizer = request.app.get(AUTHORIZER)
        if authorizer is not None:
            decision = authorizer.check(bearer_token(request), method)
            if decision.verdict is Verdict.UNAUTHENTICATED:
                raise web.HTTPUnauthorized(text=decision.message + "\n",
                                           headers={"WWW-Authenticate": "Bearer"})
            if not decision.allowed:
                raise web.HTTPForbidden(text=decision.message + "\n")
        return await handler(request)

    return guarded


def create_app(
    *,
    authorizer: Authorizer | None = None,
    registry: CollectorRegistry = REGISTRY,
    before_scrape: Callable[[], Awaitable[None]] | None = None,
    healthy: Callable[[], bool] = lambda: True,
) -> web.Application:
    """The broker's HTTP app: ``/metrics`` renders ``registry`` after awaiting
    ``before_scrape`` (reading the queue numbers); ``/healthz`` answers 200 while ``healthy()``,
    else 503 (shutting down)."""

    async def metrics(_: web.Request) -> web.Response:
        if before_scrape is not None:
            await before_scrape()
        return web.Response(body=generate_latest(registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})  # fmt: skip

    async def healthz(_: web.Request) -> web.Response:
        if healthy():
            return web.Response(text="ok\n")
        return web.Response(status=503, text="shutting down\n")

    app = web.Application()
    if authorizer is not None:
        app[AUTHORIZER] = authorizer
    app.router.add_get("/metrics", guard(metrics, METRICS_METHOD))
    app.router.add_get("/healthz", healthz)
    return app


def split_listen(listen: str) -> tuple[str, int]:
    """``"127.0.0.1:9464"`` -> ``("127.0.0.1", 9464)``; ``"[::1]:0"`` -> ``("::1", 0)``."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {listen!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


class HttpServer:
    """Runs an aiohttp app on one address until :meth:`stop`."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self._runner: web.AppRunner | None = None

    async def start(self, listen: str, *, reuse_port: bool = False) -> str:
        """Bind and serve; the bound ``host:port`` (port 0 picks a free one). Raises OSError
        when the address is taken, unless ``reuse_port`` and every holder of the port set
        SO_REUSEPORT too (the processes of one ``--processes N`` broker)."""
        host, port = split_listen(listen)
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_address=True, reuse_port=reuse_port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        bound = runner.addresses[0]
        return f"{listen.rpartition(':')[0]}:{bound[1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
