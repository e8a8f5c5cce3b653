"""The consult service's own HTTP app, for when it runs as its own process.

``medcode service consult`` serves this and the inbound SMTP listener; the worker runs
the intake and mail consumers. Internal only: the gateway passes the caller's token.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette

from services.consult.client import LocalConsults, serialise
from services.consult.failures import ConsultFailure
from services.shared.rpc import Method, rpc_app

METHODS = ("my_consults", "queue", "request_consult", "claim", "answer", "close_case")


def create_app(consults: LocalConsults) -> Starlette:
    def expose(name: str) -> Method:
        method = getattr(consults, name)

        async def call(**kwargs: Any) -> Any:
            return serialise(await method(**kwargs))

        return call

    return rpc_app({name: expose(name) for name in METHODS}, expected=(ConsultFailure,))
