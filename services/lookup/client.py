"""How other code talks to the lookup service: a Protocol and its two implementations.

Longer than 400 lines on purpose: the Protocol, LocalLookup and HttpLookup are one
contract read side by side, method for method (the values they answer with are in
values.py).
"""

from __future__ import annotations

import asyncio
import time
from contextlib import nullcontext
from dataclasses import asdict
from datetime import date
from typing import Any, Protocol

from services.lookup import metrics
from services.lookup.application import CodeSets, effective_iso
from services.lookup.domain import (
    SYSTEMS,
    Code,
    LookupFailure,
    Reference,
    UndatedRelease,
    UnknownRelease,
    normalise_code,
)
from services.lookup.gems import GemTable
from services.lookup.note_codes import references
from services.lookup.search.documents import CodeDocument
from services.lookup.search.engine import CANDIDATES, Results, facets, search, warm
from services.lookup.search.interpretation import VOCABULARIES

# How lookup reads a query's words, for clients that read questions the same way
# (CasePilot tells a question's content words from filler with them).
from services.lookup.search.wording import EVERYDAY as EVERYDAY
from services.lookup.search.wording import STOPWORDS as STOPWORDS
from services.lookup.search.wording import matched_spans
from services.lookup.values import (
    ChangePage,
    CodeDetail,
    CodeListPage,
    CodeSummary,
    GemMapping,
    PcsAxisValue,
    PcsRow,
    PcsTable,
    ReleaseChange,
    ReleaseInfo,
    SearchFacets,
    SearchPage,
)
from services.shared.rpc import RemoteError, RpcClient
from services.shared.search.cache import SearchCache
from services.shared.search.model import SearchCatalog
from services.shared.threads import run_in_threadpool
from services.shared.turns import Turns

LOADED_TTL = 5.0  # seconds a search trusts its list of loaded code systems
MAX_CHILDREN = 500  # a PCS table can hold hundreds of codes; a page lists the first ones

# Notes that speak only of the entry they are written on; the rest apply below it too.
_LOCAL_NOTES = {"inclusion_terms"}


class LookupClient(Protocol):
    async def search_codes(
        self,
        query: str,
        systems: list[str] | None = None,
        offset: int = 0,
        limit: int = 10,
        billable_only: bool = False,
        chapter: str | None = None,
        count: bool = True,
        typing: bool = False,
        spans: bool = True,
    ) -> SearchPage:
        """One page of the best matches. ``total`` counts every match when ``count``
        (a client showing totalCount); without it, it is at least what was ranked and
        more when more match, and the backend skips counting them all. ``typing``: the
        query is still being typed (a search box's keystroke), so its last word may be
        the start of one. ``spans``: where the searched words stand in each title
        (``title_matches``), for a client that marks them; none without."""

    async def search_facets(
        self,
        query: str,
        systems: list[str] | None = None,
        billable_only: bool = False,
        chapter: str | None = None,
        typing: bool = False,
    ) -> SearchFacets:
        """How the entries ``search_codes`` counts in its total fall by code system,
        chapter and billable state; each group ignores its own filter."""

    async def code_detail(
        self, system: str, code: str, as_of: date | None = None
    ) -> CodeDetail | None:
        """The full entry for a code typed in any common spelling, or None.

        With ``as_of`` (a date of service), the entry as it stood on that day: None if it
        did not exist then; its family and notes as of the same day. The history is
        always the whole of it.
        """

    async def codes_as_of(
        self, codes: list[tuple[str, str]], as_of: date
    ) -> list[CodeSummary | None]:
        """Each (system, canonical code) as it stood on ``as_of``; None where it did not
        exist on that day."""

    async def changes(
        self,
        system: str,
        since: str | None = None,
        until: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> ChangePage:
        """What the releases after ``since`` up to and including ``until`` changed (until:
        the latest release by default; since: the release before until). Raises
        UnknownRelease for a release that was never imported."""

    async def releases(self, system: str) -> list[ReleaseInfo]:
        """The releases imported, oldest import first."""

    async def list_codes(self, system: str, offset: int = 0, limit: int = 100) -> CodeListPage:
        """Every entry of a system (each has a code page), in code order, a page at a time."""

    async def reference(self, system: str, name: str) -> list[dict[str, Any]]:
        """A reference text published with the code set ("guidelines", "index",
        "modifiers"): its items, empty when none was published."""

    async def gems(self, system: str, icd9: str) -> GemMapping | None:
        """The ICD-10 codes (``system``: ICD10CM or ICD10PCS) the GEMs map an ICD-9-CM code
        to, the code typed with or without its dot; None when the GEM has no entry."""

    async def unknown_words(self, words: list[str]) -> list[str]:
        """The words no indexed entry holds (titles, inclusion terms, lexicon terms) and
        that are no near spelling of one: what search cannot have understood."""

    async def word_entries(self, words: list[str]) -> list[int]:
        """For each word, about how many indexed entries hold it as typed or by its stem
        (titles, inclusion terms, lexicon terms), 0 for none; misspellings are not
        corrected. Tells the code sets' working vocabulary from an incidental word."""

    async def pcs_table(self, table: str) -> PcsTable | None:
        """A PCS table (its first three characters, e.g. "0DT") with every valid code
        and its axis values; None for an unknown table."""


def _summary(code: Code) -> CodeSummary:
    return CodeSummary(code.system, code.code, code.title, code.billable,
                       str(code.content["kind"]))


class LocalLookup:
    """The in-process client: used by the embedded gateway and by the lookup API."""

    def __init__(
        self,
        app: CodeSets,
        catalog: SearchCatalog[CodeDocument],
        cache: SearchCache[Results] | None = None,
        turns: Turns | None = None,
        candidates: int = CANDIDATES,
    ) -> None:
        self.app = app
        self.catalog = catalog
        self.cache = cache
        # Where searches hold the event loop (runtime.search_turns), they take turns.
        self.turns = turns
        self.candidates = candidates  # the backend's (runtime.search_candidates)
        self._loaded: tuple[float, frozenset[str]] = (0.0, frozenset())
        self._loading = asyncio.Lock()
        self._gem_tables: dict[str, GemTable] = {}

    async def warm(self) -> None:
        await warm(self.catalog)

    async def _loaded_systems(self) -> frozenset[str]:
        """Systems with at least one release; re-read every few seconds, not per search,
        and by one search at a time: every search under way when the list went stale
        read it again, each replaying every code set's history."""
        async with self._loading:
            read_at, loaded = self._loaded
            if time.monotonic() - read_at > LOADED_TTL:
                loaded = await run_in_threadpool(
                    lambda: frozenset(s for s in SYSTEMS if self.app.releases(s))
                )
                self._loaded = (time.monotonic(), loaded)
        return loaded

    async def search_codes(
        self,
        query: str,
        systems: list[str] | None = None,
        offset: int = 0,
        limit: int = 10,
        billable_only: bool = False,
        chapter: str | None = None,
        count: bool = True,
        typing: bool = False,
        spans: bool = True,
    ) -> SearchPage:
        async with self.turns or nullcontext():
            with metrics.SEARCH_SECONDS.time():
                results = await search(
                    self.catalog, query, systems=tuple(systems or ()),
                    billable_only=billable_only, chapter=chapter, offset=offset, limit=limit,
                    cache=self.cache, count=count, typing=typing, candidates=self.candidates,
                )
        # Which of the systems asked for hold nothing yet (none asked: none to tell).
        loaded = await self._loaded_systems() if systems else frozenset()
        return SearchPage(
            [CodeSummary(d.system, d.code, d.title, d.billable, d.kind) for d in results.documents],
            results.total,
            [s for s in systems or () if s not in loaded],
            [[list(span) for span in matched_spans(d.title, results.asked)]
             for d in results.documents] if spans else [],
        )

    async def search_facets(
        self,
        query: str,
        systems: list[str] | None = None,
        billable_only: bool = False,
        chapter: str | None = None,
        typing: bool = False,
    ) -> SearchFacets:
        async with self.turns or nullcontext():
            counted = await facets(
                self.catalog, query, systems=tuple(systems or ()), billable_only=billable_only,
                chapter=chapter, typing=typing, candidates=self.candidates,
            )
        titles = await run_in_threadpool(self._chapter_titles, list(counted.chapters))
        return SearchFacets.of(counted, titles)

    def _chapter_titles(self, chapters: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """The titles of (system, chapter)s: each system's chapter or section heading is
        the entry whose code is the chapter id."""
        return {key: found.title for key in chapters if (found := self.app.code(*key))}

    async def code_detail(
        self, system: str, code: str, as_of: date | None = None
    ) -> CodeDetail | None:
        canonical = normalise_code(system, code)
        if canonical is None:
            return None
        return await run_in_threadpool(self._detail, system, canonical, as_of)

    async def codes_as_of(
        self, codes: list[tuple[str, str]], as_of: date
    ) -> list[CodeSummary | None]:
        def read() -> list[CodeSummary | None]:
            return [_summary(c) if (c := self.app.code(system, code, as_of)) else None
                    for system, code in codes]

        return await run_in_threadpool(read)

    async def changes(
        self,
        system: str,
        since: str | None = None,
        until: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> ChangePage:
        def read() -> ChangePage:
            total = self.app.count_changes(system, since, until)
            items = self.app.changes(system, since, until, offset=offset, limit=limit)
            return ChangePage([ReleaseChange(system=system, **i) for i in items], total)

        return await run_in_threadpool(read)

    async def releases(self, system: str) -> list[ReleaseInfo]:
        found = await run_in_threadpool(self.app.releases, system)
        return [ReleaseInfo(system=system, **r) for r in found]

    async def list_codes(self, system: str, offset: int = 0, limit: int = 100) -> CodeListPage:
        index = await (self.cache.live(self.catalog) if self.cache else self.catalog.live())
        documents, total = await index.listing("system", system, offset, limit)
        return CodeListPage(
            [CodeSummary(d.system, d.code, d.title, d.billable, d.kind) for d in documents],
            total,
        )

    async def reference(self, system: str, name: str) -> list[dict[str, Any]]:
        found = await run_in_threadpool(self.app.reference, system, name)
        return list(found.items) if found else []

    async def gems(self, system: str, icd9: str) -> GemMapping | None:
        table = await run_in_threadpool(self._gems, system)
        return table.get(icd9) if table is not None else None

    def _gems(self, system: str) -> GemTable | None:
        """The GEM reference read once per published version (thousands of items)."""
        # The version from the last stored event alone: reading the whole reference
        # (thousands of items) only when it changed.
        last = self.app.recorder.select_events(
            Reference.create_id(system, "gems"), desc=True, limit=1
        )
        if not last:
            return None
        cached = self._gem_tables.get(system)
        if cached is not None and cached.version == last[0].originator_version:
            return cached
        table = GemTable.read(self.app, system)
        if table is not None:
            self._gem_tables[system] = table
        return table

    async def unknown_words(self, words: list[str]) -> list[str]:
        vocabulary = await VOCABULARIES.of(self.catalog, await self.catalog.live())
        if not len(vocabulary):
            return []  # nothing indexed yet: nothing can be told apart
        return [w for w in words
                if not vocabulary.knows(w.lower()) and vocabulary.correct(w.lower()) == w.lower()]

    async def word_entries(self, words: list[str]) -> list[int]:
        vocabulary = await VOCABULARIES.of(self.catalog, await self.catalog.live())
        return [vocabulary.entries(w.lower()) for w in words]

    async def pcs_table(self, table: str) -> PcsTable | None:
        return await run_in_threadpool(self._pcs_table, table.strip().upper())

    def _pcs_table(self, table: str) -> PcsTable | None:
        found = self.app.code("ICD10PCS", table)
        if found is None or found.content.get("kind") != "table":
            return None
        rows = []
        for code in found.content.get("children", []):
            entry = self.app.code("ICD10PCS", code)
            if entry is not None:
                axes = [PcsAxisValue(**a) for a in entry.content.get("details", {}).get("axes", [])]
                rows.append(PcsRow(entry.code, entry.title, axes))
        notes = [text for texts in found.content.get("notes", {}).values() for text in texts]
        return PcsTable(found.code, found.title, notes, rows)

    def _detail(self, system: str, code: str, as_of: date | None = None) -> CodeDetail | None:
        found = self.app.code(system, code, as_of)
        if found is None:
            return None
        lineage: list[Code] = []  # the parent first, the top last
        parent = found.content.get("parent")
        while parent:
            above = self.app.code(system, parent, as_of)
            if above is None:
                break
            lineage.append(above)
            parent = above.content.get("parent")
        notes = self._notes(found, lineage, as_of)
        seventh = next(
            (c for c in [found, *lineage] if c.content.get("seven_character")), None
        )
        return CodeDetail(
            system=found.system,
            code=found.code,
            title=found.title,
            billable=found.billable,
            kind=str(found.content["kind"]),
            chapter=found.content.get("chapter"),
            ancestors=[_summary(c) for c in reversed(lineage)],
            children=self._summaries(
                system, found.content.get("children", [])[:MAX_CHILDREN], as_of
            ),
            siblings=self._summaries(
                system,
                [c for c in lineage[0].content.get("children", []) if c != found.code]
                if lineage else [],
                as_of,
            ),
            notes=notes,
            seven_character=[list(p) for p in seventh.content["seven_character"]]
            if seventh else [],
            seven_character_source=seventh.code if seventh else None,
            # The whole history, also when answering as of a date: what happened later
            # (a revision, a deletion) is what a coder checking an old claim needs to see.
            history=self.app.history(system, code) if as_of else [
                {**h, "effective": effective_iso(h["release"], system)} for h in found.history
            ],
            details=dict(found.content.get("details", {})),
        )

    def _summaries(
        self, system: str, codes: list[str], as_of: date | None = None
    ) -> list[CodeSummary]:
        return [_summary(c) for code in codes
                if (c := self.app.code(system, code, as_of)) is not None]

    def _notes(
        self, found: Code, lineage: list[Code], as_of: date | None = None
    ) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = []
        for holder in [found, *lineage]:
            for kind, texts in holder.content.get("notes", {}).items():
                if holder is not found and kind in _LOCAL_NOTES:
                    continue
                links = []
                for text in texts:
                    for ref in references(found.system, text):
                        target = self.app.code(found.system, ref, as_of)
                        if target is not None and ref != found.code:
                            links.append({"text": text, "code": target.code,
                                          "title": target.title})
                groups.append({"kind": kind, "source": holder.code, "notes": list(texts),
                               "links": links})
        return groups


class HttpLookup:
    """The client used when the lookup service runs as its own process (see api.py)."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        self._rpc = RpcClient(base_url, token=token)

    async def search_codes(
        self,
        query: str,
        systems: list[str] | None = None,
        offset: int = 0,
        limit: int = 10,
        billable_only: bool = False,
        chapter: str | None = None,
        count: bool = True,
        typing: bool = False,
        spans: bool = True,
    ) -> SearchPage:
        data = await self._rpc.call(
            "search_codes", query=query, systems=systems, offset=offset, limit=limit,
            billable_only=billable_only, chapter=chapter, count=count, typing=typing,
            spans=spans,
        )
        return SearchPage([CodeSummary(**i) for i in data["items"]], data["total"],
                          data.get("unloaded", []), data.get("title_matches", []))

    async def search_facets(
        self,
        query: str,
        systems: list[str] | None = None,
        billable_only: bool = False,
        chapter: str | None = None,
        typing: bool = False,
    ) -> SearchFacets:
        data = await self._rpc.call(
            "search_facets", query=query, systems=systems, billable_only=billable_only,
            chapter=chapter, typing=typing,
        )
        return SearchFacets.from_dict(data)

    async def _call(self, method: str, **kwargs: Any) -> Any:
        try:
            return await self._rpc.call(method, **kwargs)
        except RemoteError as error:
            raise _FAILURES.get(error.type, LookupFailure)(str(error)) from None

    async def code_detail(
        self, system: str, code: str, as_of: date | None = None
    ) -> CodeDetail | None:
        data = await self._call("code_detail", system=system, code=code,
                                as_of=as_of.isoformat() if as_of else None)
        return CodeDetail.from_dict(data) if data else None

    async def codes_as_of(
        self, codes: list[tuple[str, str]], as_of: date
    ) -> list[CodeSummary | None]:
        data = await self._call("codes_as_of", codes=[list(c) for c in codes],
                                as_of=as_of.isoformat())
        return [CodeSummary(**i) if i else None for i in data]

    async def changes(
        self,
        system: str,
        since: str | None = None,
        until: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> ChangePage:
        data = await self._call("changes", system=system, since=since, until=until,
                                offset=offset, limit=limit)
        return ChangePage.from_dict(data)

    async def releases(self, system: str) -> list[ReleaseInfo]:
        return [ReleaseInfo(**r) for r in await self._call("releases", system=system)]

    async def list_codes(self, system: str, offset: int = 0, limit: int = 100) -> CodeListPage:
        data = await self._call("list_codes", system=system, offset=offset, limit=limit)
        return CodeListPage.from_dict(data)

    async def reference(self, system: str, name: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = await self._call("reference", system=system, name=name)
        return items

    async def gems(self, system: str, icd9: str) -> GemMapping | None:
        data = await self._call("gems", system=system, icd9=icd9)
        return GemMapping.from_dict(data) if data else None

    async def unknown_words(self, words: list[str]) -> list[str]:
        found: list[str] = await self._call("unknown_words", words=words)
        return found

    async def word_entries(self, words: list[str]) -> list[int]:
        counts: list[int] = await self._call("word_entries", words=words)
        return counts

    async def pcs_table(self, table: str) -> PcsTable | None:
        data = await self._call("pcs_table", table=table)
        return PcsTable.from_dict(data) if data else None

    async def close(self) -> None:
        await self._rpc.close()


_FAILURES: dict[str, type[LookupFailure]] = {
    cls.__name__: cls for cls in (UnknownRelease, UndatedRelease)
}


def serialise(
    value: SearchPage | SearchFacets | CodeDetail | ChangePage | CodeListPage | GemMapping
    | PcsTable | None,
) -> dict[str, Any] | None:
    return asdict(value) if value is not None else None
