"""How other code talks to the lookup service: a Protocol and its two implementations."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool

from services.lookup.application import CodeSets
from services.lookup.domain import Code, normalise_code
from services.shared.rpc import RpcClient
from services.shared.search.engine import search
from services.shared.search.model import SearchCatalog


@dataclass(frozen=True)
class CodeSummary:
    system: str
    code: str
    title: str
    billable: bool
    kind: str = "code"


@dataclass(frozen=True)
class SearchPage:
    items: list[CodeSummary]
    total: int


@dataclass(frozen=True)
class CodeDetail:
    system: str
    code: str
    title: str
    billable: bool
    kind: str
    chapter: str | None
    ancestors: list[CodeSummary]  # from the chapter down to the parent
    notes: dict[str, list[str]] = field(default_factory=dict)
    seven_character: list[list[str]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CodeDetail:
        data = dict(data)
        data["ancestors"] = [CodeSummary(**a) for a in data["ancestors"]]
        return cls(**data)


class LookupClient(Protocol):
    async def search_codes(
        self,
        query: str,
        systems: list[str] | None = None,
        offset: int = 0,
        limit: int = 10,
        billable_only: bool = False,
    ) -> SearchPage: ...

    async def code_detail(self, system: str, code: str) -> CodeDetail | None:
        """The full entry for a code typed in any common spelling, or None."""


def _summary(code: Code) -> CodeSummary:
    return CodeSummary(code.system, code.code, code.title, code.billable,
                       str(code.content["kind"]))


class LocalLookup:
    """The in-process client: used by the embedded gateway and by the lookup API."""

    def __init__(self, app: CodeSets, catalog: SearchCatalog) -> None:
        self.app = app
        self.catalog = catalog

    async def search_codes(
        self,
        query: str,
        systems: list[str] | None = None,
        offset: int = 0,
        limit: int = 10,
        billable_only: bool = False,
    ) -> SearchPage:
        results = await search(
            self.catalog, query, systems=tuple(systems or ()), billable_only=billable_only,
            offset=offset, limit=limit,
        )
        return SearchPage(
            [CodeSummary(d.system, d.code, d.title, d.billable, d.kind) for d in results.documents],
            results.total,
        )

    async def code_detail(self, system: str, code: str) -> CodeDetail | None:
        canonical = normalise_code(system, code)
        if canonical is None:
            return None
        return await run_in_threadpool(self._detail, system, canonical)

    def _detail(self, system: str, code: str) -> CodeDetail | None:
        found = self.app.code(system, code)
        if found is None:
            return None
        ancestors: list[CodeSummary] = []
        parent = found.content.get("parent")
        while parent:
            above = self.app.code(system, parent)
            if above is None:
                break
            ancestors.insert(0, _summary(above))
            parent = above.content.get("parent")
        return CodeDetail(
            system=found.system,
            code=found.code,
            title=found.title,
            billable=found.billable,
            kind=str(found.content["kind"]),
            chapter=found.content.get("chapter"),
            ancestors=ancestors,
            notes={k: list(v) for k, v in found.content.get("notes", {}).items()},
            seven_character=[list(p) for p in found.content.get("seven_character", [])],
            history=list(found.history),
        )


class HttpLookup:
    """The client used when the lookup service runs as its own process (see api.py)."""

    def __init__(self, base_url: str) -> None:
        self._rpc = RpcClient(base_url)

    async def search_codes(
        self,
        query: str,
        systems: list[str] | None = None,
        offset: int = 0,
        limit: int = 10,
        billable_only: bool = False,
    ) -> SearchPage:
        data = await self._rpc.call(
            "search_codes", query=query, systems=systems, offset=offset, limit=limit,
            billable_only=billable_only,
        )
        return SearchPage([CodeSummary(**i) for i in data["items"]], data["total"])

    async def code_detail(self, system: str, code: str) -> CodeDetail | None:
        data = await self._rpc.call("code_detail", system=system, code=code)
        return CodeDetail.from_dict(data) if data else None

    async def close(self) -> None:
        await self._rpc.close()


def serialise(value: SearchPage | CodeDetail | None) -> dict[str, Any] | None:
    return asdict(value) if value is not None else None
