"""What every medcode process serves about itself, and the GraphQL operation telemetry.

``/healthz`` (alive: the event loop answers), ``/readyz`` (relays and consumers running,
none failing repeatedly, lag in bounds; the body lists each worker) and ``/metrics``
(Prometheus). The gateway, each service's own API and the worker all mount these.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from strawberry.extensions import SchemaExtension

from gateway.bootstrap import Platform
from services.shared import metrics, tracing


def routes(platform: Platform) -> list[Route]:
    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        await _measured()
        ready, body = platform.readiness()
        return JSONResponse(body, status_code=200 if ready else 503)

    async def _measured() -> None:
        """Fresh lags for this answer (the monitor's may be seconds old)."""
        if platform.started:
            try:
                await platform.measure()
            except Exception:  # noqa: S110 - the monitor logs it; answer with the last values
                pass

    async def scrape(request: Request) -> Response:
        await _measured()
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    return [Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", scrape)]


class OperationTelemetry(SchemaExtension):
    """A span and a latency observation per GraphQL operation, named by the operation."""

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        with tracing.tracer().start_as_current_span("graphql") as span:
            try:
                yield
            finally:
                context = self.execution_context
                name = context.operation_name or "anonymous"
                kind = "unknown"
                try:
                    kind = context.operation_type.value
                except Exception:  # noqa: S110 - a document that did not parse has no type
                    pass
                span.update_name(f"graphql {kind} {name}")
                span.set_attribute("graphql.operation.name", name)
                span.set_attribute("graphql.operation.type", kind)
                metrics.GRAPHQL_SECONDS.labels(name, kind).observe(
                    time.perf_counter() - started)
