"""A small JSON-over-HTTP call convention for service clients when distributed.

``POST /rpc/<method>`` with a JSON object of keyword arguments answers a JSON value.
Expected failures travel as ``{"error": {"type": ..., "message": ...}}`` with status 422
so the client can raise the same typed error the in-process client would.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from opentelemetry.trace import SpanKind
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from services.shared import tracing

Method = Callable[..., Awaitable[Any]]
# Health and metrics answer without the service token (probes and Prometheus).
OPEN_PATHS = ("/healthz", "/readyz", "/metrics")


class RemoteError(Exception):
    def __init__(self, type_: str, message: str) -> None:
        super().__init__(message)
        self.type = type_


def rpc_app(methods: dict[str, Method], expected: tuple[type[Exception], ...] = ()) -> Starlette:
    async def call(request: Request) -> JSONResponse:
        method = methods.get(request.path_params["method"])
        if method is None:
            return JSONResponse({"error": {"type": "UnknownMethod", "message": "no such method"}},
                                status_code=404)
        try:
            kwargs = await request.json()
            # The caller's trace goes on here (W3C traceparent header).
            with tracing.tracer().start_as_current_span(
                f"rpc {request.path_params['method']}",
                context=tracing.extract(request.headers), kind=SpanKind.SERVER,
            ):
                result = await method(**kwargs)
        except expected as exc:
            return JSONResponse(
                {"error": {"type": type(exc).__name__, "message": str(exc)}}, status_code=422
            )
        return JSONResponse({"result": result})

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/rpc/{method}", call, methods=["POST"]),
                             Route("/healthz", healthz)])


class ServiceAuth:
    """Only callers holding the shared service token may call a service's API.

    A service answers commands (a plan change, say) that the public gateway never
    exposes, so its own port must not be open to whoever can reach it.
    """

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if scope["path"] not in OPEN_PATHS and not hmac.compare_digest(given,
                                                                          self.expected):
                response = JSONResponse({"error": {"type": "Unauthorized",
                                                   "message": "a service token is required"}},
                                        status_code=401)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class RpcClient:
    def __init__(self, base_url: str, timeout: float = 10.0, token: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout, headers=headers)

    async def call(self, method: str, **kwargs: Any) -> Any:
        headers: dict[str, str] = {}
        tracing.inject(headers)
        response = await self._http.post(f"/rpc/{method}", json=kwargs, headers=headers)
        body = response.json()
        if response.status_code == 422:
            raise RemoteError(body["error"]["type"], body["error"]["message"])
        response.raise_for_status()
        return body["result"]

    async def close(self) -> None:
        await self._http.aclose()
