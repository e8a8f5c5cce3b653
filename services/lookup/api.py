"""The lookup service's own HTTP app, for when it runs as its own process."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Any

from starlette.applications import Starlette

from services.lookup.client import LocalLookup, serialise
from services.lookup.domain import LookupFailure
from services.shared.rpc import rpc_app


def _date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise LookupFailure(f"{value!r} is not a date (YYYY-MM-DD)") from None


def create_app(lookup: LocalLookup) -> Starlette:
    async def search_codes(**kwargs: Any) -> dict[str, Any] | None:
        return serialise(await lookup.search_codes(**kwargs))

    async def search_facets(**kwargs: Any) -> dict[str, Any] | None:
        return serialise(await lookup.search_facets(**kwargs))

    async def code_detail(
        system: str, code: str, as_of: str | None = None
    ) -> dict[str, Any] | None:
        return serialise(await lookup.code_detail(system, code, _date(as_of)))

    async def codes_as_of(codes: list[list[str]], as_of: str) -> list[dict[str, Any] | None]:
        day = _date(as_of)
        assert day is not None
        found = await lookup.codes_as_of([(s, c) for s, c in codes], day)
        return [asdict(f) if f else None for f in found]

    async def changes(
        system: str, since: str | None = None, until: str | None = None, offset: int = 0,
        limit: int = 50,
    ) -> dict[str, Any] | None:
        return serialise(await lookup.changes(system, since, until, offset, limit))

    async def releases(system: str) -> list[dict[str, Any]]:
        return [asdict(r) for r in await lookup.releases(system)]

    async def reference(system: str, name: str) -> list[dict[str, Any]]:
        return await lookup.reference(system, name)

    async def list_codes(system: str, offset: int = 0, limit: int = 100) -> dict[str, Any] | None:
        return serialise(await lookup.list_codes(system, offset, limit))

    async def gems(system: str, icd9: str) -> dict[str, Any] | None:
        return serialise(await lookup.gems(system, icd9))

    async def pcs_table(table: str) -> dict[str, Any] | None:
        return serialise(await lookup.pcs_table(table))

    async def unknown_words(words: list[str]) -> list[str]:
        return await lookup.unknown_words(words)

    return rpc_app(
        {"search_codes": search_codes, "search_facets": search_facets,
         "code_detail": code_detail,
         "codes_as_of": codes_as_of, "changes": changes, "releases": releases,
         "reference": reference, "list_codes": list_codes, "gems": gems,
         "pcs_table": pcs_table, "unknown_words": unknown_words},
        expected=(LookupFailure,),
    )
