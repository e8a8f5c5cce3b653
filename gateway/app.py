"""The HTTP entrypoint: GraphQL at /graphql, health at /healthz and /readyz."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry.asgi import GraphQL

from gateway import telemetry
from gateway.bootstrap import Platform
from gateway.schema import build_schema
from gateway.workers import background_lock
from services.shared import logs, metrics
from services.shared.client_address import client_address, trusted_networks
from services.shared.graphql import Cookie, RequestContext
from services.shared.memory import limit_arenas, settle_heap
from services.shared.settings import Settings
from services.shared.web import SESSION_COOKIE, Site, write_cookies
from services.shared.web.security import SecurityHeaders

GRAPHIQL = Path(__file__).parent / "static" / "graphiql"


class BodyLimit:
    """Refuse oversized requests before parsing: a 200 kB query costs us nothing."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0

        async def limited() -> Any:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {"errors": [{"message": f"Request body is larger than {self.max_bytes} bytes."}]},
            status_code=413,
        )
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass


class Gateway(GraphQL):  # type: ignore[type-arg]
    def __init__(self, platform: Platform) -> None:
        settings = platform.settings
        super().__init__(
            build_schema(platform.products, settings),
            graphql_ide="graphiql" if settings.development else None,
            allow_queries_via_get=False,
        )
        self.platform = platform
        self.trusted_proxies = trusted_networks(settings.trusted_proxies)
        # Cookies resolvers set, per in-flight request (keyed by strawberry's sub-response).
        self._cookies: WeakKeyDictionary[Response, dict[str, Cookie | None]] = (
            WeakKeyDictionary())

    def context(self, request: Request) -> RequestContext:
        """Who is asking: a Bearer token, else the browser's session cookie."""
        token = None
        authorization = request.headers.get("authorization", "")
        if authorization.lower().startswith("bearer "):
            token = authorization[7:].strip() or None
        return RequestContext(
            clients=self.platform.clients,
            token=token or request.cookies.get(SESSION_COOKIE),
            client_address=client_address(
                request.client.host if request.client else None,
                request.headers.getlist("x-forwarded-for"), self.trusted_proxies),
            development=self.platform.settings.development,
        )

    async def get_context(  # type: ignore[override]
        self, request: Any, response: Any
    ) -> RequestContext:
        context = self.context(request)
        if request.scope["type"] == "http":  # a websocket sets no cookies
            self._cookies[response] = context.response_cookies
        return context

    async def render_graphql_ide(self, request: Request) -> Response:  # type: ignore[override]
        """GraphiQL from the package's own copy (gateway/static/graphiql): no CDN."""
        return HTMLResponse(_graphiql_page())

    def create_response(
        self, response_data: Any, sub_response: Response
    ) -> Response:
        """Set the cookies resolvers asked for (last value per name wins), browser-safe."""
        response = super().create_response(response_data, sub_response)
        write_cookies(response, self._cookies.pop(sub_response, {}))
        return response


def serving_app() -> Starlette:
    """The app of one of several serving processes (uvicorn's factory: settings from the
    environment the command was started with)."""
    logs.configure()  # a process of its own: JSON logs here too
    limit_arenas()  # and a small heap (services/shared/memory.py)
    return create_app(Settings.from_env(), serving=True)


def _graphiql_page() -> str:
    return (GRAPHIQL / "index.html").read_text(encoding="utf-8").replace(
        "{static}", "/static/graphiql")


def create_app(
    settings: Settings, platform: Platform | None = None, *, serving: bool = False
) -> Starlette:
    """The ASGI app; the platform starts with it and stops with it. ``serving``: the app
    of a serving process, which it has to itself for its lifetime (so its heap is settled
    once warm: services/shared/memory.py)."""
    platform = platform or Platform(settings)
    lock = background_lock(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await platform.start()
        # The products' own routes (e.g. a payment webhook) go before the pages, whose
        # mount at "/" answers every other path.
        for running in platform.running.values():
            at = app.router.routes.index(pages_mount)
            app.router.routes[at:at] = running.routes
        # Several serving processes share the data: one of them writes (gateway/workers.py)
        # and runs the serving tasks that bind a port of their own (inbound SMTP).
        writer = lock.acquire()
        platform.run_background(writer=writer)
        if writer:
            platform.serve()
        platform.warm(settle_heap if serving else None)
        try:
            yield
        finally:
            await platform.stop()
            lock.release()
            metrics.process_exiting()

    graphql = Gateway(platform)

    site = Site(
        graphql.schema,
        [p.web for p in platform.products if p.web is not None],
        graphql.context,
        development=settings.development,
        extra_static={"graphiql": GRAPHIQL},
    )
    # The pages, compressed (the API's JSON is left as it was: its clients are close by).
    pages = Starlette(routes=site.routes(),
                      exception_handlers={HTTPException: site.error_page})
    pages_mount = Mount("/", app=GZipMiddleware(pages, minimum_size=600))
    return Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            # Subscriptions (graphql-transport-ws); the same app serves both.
            WebSocketRoute("/graphql", graphql),
            *telemetry.routes(platform),
            pages_mount,
        ],
        middleware=[Middleware(BodyLimit, max_bytes=settings.max_request_bytes),
                    Middleware(SecurityHeaders)],
        lifespan=lifespan,
    )
