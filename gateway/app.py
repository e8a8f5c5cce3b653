"""The HTTP entrypoint: GraphQL at /graphql, health at /healthz and /readyz."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry.asgi import GraphQL

from gateway.bootstrap import Platform
from gateway.schema import build_schema
from services.shared.graphql import RequestContext
from services.shared.settings import Settings


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

    async def get_context(self, request: Any, response: Any) -> RequestContext:
        token = None
        authorization = request.headers.get("authorization", "")
        if authorization.lower().startswith("bearer "):
            token = authorization[7:].strip() or None
        token = token or request.cookies.get("medcode_session")
        return RequestContext(
            clients=self.platform.clients,
            token=token,
            client_address=request.client.host if request.client else None,
            development=self.platform.settings.development,
        )


def create_app(settings: Settings, platform: Platform | None = None) -> Starlette:
    """The ASGI app; the platform starts with it and stops with it."""
    platform = platform or Platform(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await platform.start()
        platform.run_background()
        try:
            yield
        finally:
            await platform.stop()

    graphql = Gateway(platform)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        if platform.healthy and platform.tasks:
            return JSONResponse({"status": "ready"})
        return JSONResponse(
            {"status": "not ready", "failures": platform.failures}, status_code=503
        )

    return Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
        ],
        middleware=[Middleware(BodyLimit, max_bytes=settings.max_request_bytes)],
        lifespan=lifespan,
    )
