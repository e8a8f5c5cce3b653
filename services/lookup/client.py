"""How other code talks to the lookup service: a Protocol and its two implementations."""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
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
from services.lookup.plain_language import PlainLanguage, describe
from services.lookup.search.documents import CodeDocument, CodeFacets
from services.lookup.search.engine import VOCABULARIES, Results, facets, search, warm

# How lookup reads a query's words, for clients that read questions the same way
# (CasePilot tells a question's content words from filler with them).
from services.lookup.search.wording import EVERYDAY as EVERYDAY
from services.lookup.search.wording import STOPWORDS as STOPWORDS
from services.lookup.search.wording import matched_spans
from services.shared.rpc import RemoteError, RpcClient
from services.shared.search.cache import SearchCache
from services.shared.search.model import SearchCatalog
from services.shared.threads import run_in_threadpool


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
    unloaded: list[str] = field(default_factory=list)  # asked-for systems with no data
    # For each item, where the searched words stand in its title: [start, end] offsets.
    title_matches: list[list[list[int]]] = field(default_factory=list)


@dataclass(frozen=True)
class SystemCount:
    system: str
    count: int


@dataclass(frozen=True)
class ChapterCount:
    system: str
    chapter: str  # as the chapter filter takes it: "9", or a PCS section such as "0"
    count: int
    title: str | None = None  # the chapter's (section's) own title, where it is loaded


@dataclass(frozen=True)
class BillableCount:
    billable: bool
    count: int


@dataclass(frozen=True)
class SearchFacets:
    """How many entries a search counts fall in each system, chapter, billable state;
    each group without its own filter (see services.lookup.search.engine.facets).
    Most entries first."""

    systems: list[SystemCount]
    chapters: list[ChapterCount]
    billable: list[BillableCount]

    @classmethod
    def of(cls, counted: CodeFacets, titles: dict[tuple[str, str], str]) -> SearchFacets:
        return cls(
            [SystemCount(s, n) for s, n in sorted(counted.systems.items(), key=_most)],
            [ChapterCount(s, c, n, titles.get((s, c)))
             for (s, c), n in sorted(counted.chapters.items(), key=_most)],
            [BillableCount(b, n) for b, n in sorted(counted.billable.items(), key=_most)],
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchFacets:
        return cls([SystemCount(**i) for i in data["systems"]],
                   [ChapterCount(**i) for i in data["chapters"]],
                   [BillableCount(**i) for i in data["billable"]])


def _most(item: tuple[Any, int]) -> tuple[int, Any]:
    """Most entries first, then by value: the same order from either backend."""
    return -item[1], item[0]


@dataclass(frozen=True)
class CodeDetail:
    system: str
    code: str
    title: str
    billable: bool
    kind: str
    chapter: str | None
    ancestors: list[CodeSummary]  # from the chapter down to the parent
    children: list[CodeSummary] = field(default_factory=list)
    siblings: list[CodeSummary] = field(default_factory=list)
    # Each group: {"kind", "source" (the code it is written on), "notes", "links"}; the
    # entry's own notes first, then those inherited from each level above it.
    notes: list[dict[str, Any]] = field(default_factory=list)
    seven_character: list[list[str]] = field(default_factory=list)
    seven_character_source: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def plain_language(self) -> PlainLanguage:
        """The code in plain words, from this official data only (see plain_language)."""
        return describe(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CodeDetail:
        data = dict(data)
        data["ancestors"] = [CodeSummary(**a) for a in data["ancestors"]]
        data["children"] = [CodeSummary(**c) for c in data["children"]]
        data["siblings"] = [CodeSummary(**c) for c in data["siblings"]]
        return cls(**data)


@dataclass(frozen=True)
class CodeListPage:
    """A page of a code system's entries in code order, and how many it holds."""

    items: list[CodeSummary]
    total: int

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CodeListPage:
        return cls([CodeSummary(**i) for i in data["items"]], data["total"])


@dataclass(frozen=True)
class ReleaseChange:
    """One change a release made to one entry."""

    system: str
    code: str
    change: str  # added | revised | deleted
    release: str
    effective: str | None  # ISO date the release took effect
    title: str  # as the release left it; the last known title for a deletion
    previous_title: str | None = None  # for a revision that changed the title


@dataclass(frozen=True)
class ChangePage:
    items: list[ReleaseChange]
    total: int

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChangePage:
        return cls([ReleaseChange(**i) for i in data["items"]], data["total"])


@dataclass(frozen=True)
class ReleaseInfo:
    """An imported release of a code set, with what it changed."""

    system: str
    release: str
    effective: str | None  # ISO date, None when the identifier names no date
    source: str
    added: int
    revised: int
    deleted: int


@dataclass(frozen=True)
class GemTarget:
    """One ICD-10 code an ICD-9-CM code maps to, with the GEM's flags."""

    code: str
    approximate: bool
    no_map: bool
    combination: bool  # one of several codes that together express the ICD-9 code
    scenario: int
    choice_list: int


@dataclass(frozen=True)
class GemMapping:
    """What the General Equivalence Mappings give for one ICD-9-CM code."""

    system: str  # the ICD-10 code set mapped to: ICD10CM (diagnoses) or ICD10PCS
    icd9: str  # as printed: "250.00", "47.01"
    description: str
    release: str  # of the GEM file
    targets: list[GemTarget]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GemMapping:
        return cls(**{**data, "targets": [GemTarget(**t) for t in data["targets"]]})


@dataclass(frozen=True)
class PcsAxisValue:
    position: int  # 1-7
    axis: str  # "Section", "Body System", "Root Operation", ...
    value: str  # the character
    meaning: str
    definition: str | None = None


@dataclass(frozen=True)
class PcsRow:
    """One valid code of an ICD-10-PCS table with its seven axis values."""

    code: str
    title: str
    axes: list[PcsAxisValue]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PcsRow:
        return cls(data["code"], data["title"], [PcsAxisValue(**a) for a in data["axes"]])


@dataclass(frozen=True)
class PcsTable:
    """An ICD-10-PCS table: its first three characters, its root operation's name and
    notes (definition, explanation, examples), and every valid row."""

    table: str
    title: str
    notes: list[str]
    rows: list[PcsRow]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PcsTable:
        return cls(data["table"], data["title"], data["notes"],
                   [PcsRow.from_dict(r) for r in data["rows"]])


LOADED_TTL = 5.0  # seconds a search trusts its list of loaded code systems
MAX_CHILDREN = 500  # a PCS table can hold hundreds of codes; a page lists the first ones

# Notes that speak only of the entry they are written on; the rest apply below it too.
_LOCAL_NOTES = {"inclusion_terms"}
# Code references as the tabular writes them: "S78.-", "M97.0-", "E08-E13", "Z16.-".
_REFERENCE = re.compile(
    r"\b([A-Z][0-9]{2}-[A-Z][0-9][0-9A-Z]|[A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?)"
)


def reference_spans(system: str, text: str) -> list[tuple[int, int, str]]:
    """Where a note names codes: (start, end, canonical code), in order of appearance."""
    if system != "ICD10CM":
        return []
    spans = []
    for match in _REFERENCE.finditer(text):
        code = normalise_code(system, match.group(1))
        if code:
            spans.append((match.start(1), match.end(1), code))
    return spans


def references(system: str, text: str) -> list[str]:
    """Codes a note points to, canonical, in order of appearance, without repeats."""
    found: list[str] = []
    for _, _, code in reference_spans(system, text):
        if code not in found:
            found.append(code)
    return found


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
    ) -> SearchPage:
        """One page of the best matches. ``total`` counts every match when ``count``
        (a client showing totalCount); without it, it is at least what was ranked and
        more when more match, and the backend skips counting them all."""

    async def search_facets(
        self,
        query: str,
        systems: list[str] | None = None,
        billable_only: bool = False,
        chapter: str | None = None,
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
    ) -> None:
        self.app = app
        self.catalog = catalog
        self.cache = cache
        self._loaded: tuple[float, frozenset[str]] = (0.0, frozenset())
        self._gem_maps: dict[str, tuple[int, dict[str, GemMapping]]] = {}

    async def warm(self) -> None:
        await warm(self.catalog)

    async def _loaded_systems(self) -> frozenset[str]:
        """Systems with at least one release; re-read every few seconds, not per search."""
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
    ) -> SearchPage:
        with metrics.SEARCH_SECONDS.time():
            results = await search(
                self.catalog, query, systems=tuple(systems or ()), billable_only=billable_only,
                chapter=chapter, offset=offset, limit=limit, cache=self.cache, count=count,
            )
        loaded = await self._loaded_systems()
        return SearchPage(
            [CodeSummary(d.system, d.code, d.title, d.billable, d.kind) for d in results.documents],
            results.total,
            [s for s in systems or () if s not in loaded],
            [[list(span) for span in matched_spans(d.title, results.asked)]
             for d in results.documents],
        )

    async def search_facets(
        self,
        query: str,
        systems: list[str] | None = None,
        billable_only: bool = False,
        chapter: str | None = None,
    ) -> SearchFacets:
        counted = await facets(
            self.catalog, query, systems=tuple(systems or ()), billable_only=billable_only,
            chapter=chapter,
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
        mappings = await run_in_threadpool(self._gems, system)
        return mappings.get(_icd9_key(icd9))

    def _gems(self, system: str) -> dict[str, GemMapping]:
        """The GEM reference read once per published version (thousands of items)."""
        # The version from the last stored event alone: reading the whole reference
        # (thousands of items) only when it changed.
        last = self.app.recorder.select_events(
            Reference.create_id(system, "gems"), desc=True, limit=1
        )
        if not last:
            return {}
        cached = self._gem_maps.get(system)
        if cached is not None and cached[0] == last[0].originator_version:
            return cached[1]
        found = self.app.reference(system, "gems")
        if found is None:
            return {}
        mappings = {
            _icd9_key(item["icd9"]): GemMapping(
                system, item["icd9"], item["description"], found.release,
                [GemTarget(**t) for t in item["targets"]],
            )
            for item in found.items
        }
        self._gem_maps[system] = (found.version, mappings)
        return mappings

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
    ) -> SearchPage:
        data = await self._rpc.call(
            "search_codes", query=query, systems=systems, offset=offset, limit=limit,
            billable_only=billable_only, chapter=chapter, count=count,
        )
        return SearchPage([CodeSummary(**i) for i in data["items"]], data["total"],
                          data.get("unloaded", []), data.get("title_matches", []))

    async def search_facets(
        self,
        query: str,
        systems: list[str] | None = None,
        billable_only: bool = False,
        chapter: str | None = None,
    ) -> SearchFacets:
        data = await self._rpc.call(
            "search_facets", query=query, systems=systems, billable_only=billable_only,
            chapter=chapter,
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


def _icd9_key(code: str) -> str:
    """ICD-9-CM codes compared without their dot and case: "250.00" = "25000"."""
    return code.strip().upper().replace(".", "")


def serialise(
    value: SearchPage | SearchFacets | CodeDetail | ChangePage | CodeListPage | GemMapping
    | PcsTable | None,
) -> dict[str, Any] | None:
    return asdict(value) if value is not None else None
