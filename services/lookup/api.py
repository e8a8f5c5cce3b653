"""The lookup service's own HTTP app, for when it runs as its own process."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette

from services.lookup.client import LocalLookup, serialise
from services.shared.rpc import rpc_app


def create_app(lookup: LocalLookup) -> Starlette:
    async def search_codes(**kwargs: Any) -> dict[str, Any] | None:
        return serialise(await lookup.search_codes(**kwargs))

    async def code_detail(system: str, code: str) -> dict[str, Any] | None:
        return serialise(await lookup.code_detail(system, code))

    return rpc_app({"search_codes": search_codes, "code_detail": code_detail})
