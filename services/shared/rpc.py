"""A small JSON-over-HTTP call convention for service clients when distributed.

``POST /rpc/<method>`` with a JSON object of keyword arguments answers a JSON value.
Expected failures travel as ``{"error": {"type": ..., "message": ...}}`` with status 422
so the client can raise the same typed error the in-process client would.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from types import ModuleType
from typing import Any, TypeVar

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

Method = Callable[..., Awaitable[Any]]
E = TypeVar("E", bound=Exception)


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
        if scope["type"] == "http" and scope["path"] != "/healthz":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                response = JSONResponse({"error": {"type": "Unauthorized",
                                                   "message": "a service token is required"}},
                                        status_code=401)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def failures_in(module: ModuleType, base: type[E]) -> dict[str, type[E]]:
    """Every ``base`` subclass a module defines, by name: the failures a client re-raises."""
    return {cls.__name__: cls for cls in vars(module).values()
            if isinstance(cls, type) and issubclass(cls, base)}


class RpcClient:
    """Calls a service's API. With ``failure`` (a service's base failure, and the
    ``failures`` it knows by name), an expected failure is raised as the same typed error
    the in-process client raises; without, as RemoteError."""

    def __init__(self, base_url: str, timeout: float = 10.0, token: str | None = None, *,
                 failure: type[Exception] | None = None,
                 failures: Mapping[str, type[Exception]] | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout, headers=headers)
        self._failure = failure
        self._failures = dict(failures or {})

    async def call(self, method: str, **kwargs: Any) -> Any:
        response = await self._http.post(f"/rpc/{method}", json=kwargs)
        body = response.json()
        if response.status_code == 422:
            type_, message = body["error"]["type"], body["error"]["message"]
            if self._failure is not None:
                raise self._failures.get(type_, self._failure)(message)
            raise RemoteError(type_, message)
        response.raise_for_status()
        return body["result"]

    async def close(self) -> None:
        await self._http.aclose()
