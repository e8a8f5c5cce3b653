"""GraphQL types of the lookup product (one module per type family).

Longer than 400 lines on purpose: one family of types, the lookup product's GraphQL
schema, most of them thin views of the values in values.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from enum import Enum
from typing import Annotated

import strawberry

from services.lookup import plain_language
from services.lookup import values as lookup
from services.shared.graphql import PageInfo


@strawberry.enum
class CodeSystem(Enum):
    ICD10CM = "ICD10CM"
    ICD10PCS = "ICD10PCS"
    HCPCS = "HCPCS"
    CPT = "CPT"


@strawberry.input(description="A code, as other products' inputs refer to one "
                             "(a question about a code page).")
class CodeRefInput:
    system: CodeSystem
    code: str


@strawberry.type
class CodeSummary:
    system: CodeSystem
    code: str
    title: str
    billable: bool
    kind: str = strawberry.field(description="chapter, block, category or code")

    @classmethod
    def of(cls, item: lookup.CodeSummary) -> CodeSummary:
        return cls(system=CodeSystem(item.system), code=item.code, title=item.title,
                   billable=item.billable, kind=item.kind)


@strawberry.type
class TextSpan:
    """Character offsets [start, end) into a text."""

    start: int
    end: int


@strawberry.type
class CodeSearchEdge:
    cursor: str
    node: CodeSummary
    title_matches: list[TextSpan] = strawberry.field(
        default_factory=list, description="where the searched words stand in the title"
    )


@strawberry.type
class CodeIndexEdge:
    cursor: str
    node: CodeSummary


@strawberry.type
class CodeIndexConnection:
    edges: list[CodeIndexEdge]
    page_info: PageInfo
    total_count: int


@strawberry.type
class SystemCount:
    system: CodeSystem
    count: int


@strawberry.type
class ChapterCount:
    system: CodeSystem
    chapter: str = strawberry.field(
        description="the chapter (ICD-10-CM) or section (PCS...), as the chapter filter takes it"
    )
    title: str | None = strawberry.field(description="the chapter's or section's title")
    count: int


@strawberry.type
class BillableCount:
    billable: bool
    count: int


@strawberry.type(description=(
    "How many of the matches totalCount counts fall in each code system, chapter and "
    "billable state, most first. Each list ignores its own filter argument (systems, "
    "chapter, billableOnly) and keeps the others, so it shows what choosing another value "
    "would find. Values with no match are left out, and so are entries with no chapter."
))
class SearchFacets:
    systems: list[SystemCount]
    chapters: list[ChapterCount]
    billable: list[BillableCount]

    @classmethod
    def of(cls, facets: lookup.SearchFacets) -> SearchFacets:
        return cls(
            systems=[SystemCount(system=CodeSystem(c.system), count=c.count)
                     for c in facets.systems],
            chapters=[ChapterCount(system=CodeSystem(c.system), chapter=c.chapter,
                                   title=c.title, count=c.count) for c in facets.chapters],
            billable=[BillableCount(billable=c.billable, count=c.count)
                      for c in facets.billable],
        )


# Counts the facets of a search, when a query selects them.
FacetCounter = Callable[[], Awaitable[lookup.SearchFacets]]


@strawberry.type
class CodeSearchConnection:
    edges: list[CodeSearchEdge]
    page_info: PageInfo
    total_count: int
    notices: list[str] = strawberry.field(
        default_factory=list,
        description="Why results may be missing, e.g. a code system with no data loaded",
    )
    # Held, not called: only a query that selects facets pays for counting them.
    count_facets: strawberry.Private[FacetCounter | None] = None

    @strawberry.field(description=(
        "The matches counted by code system, chapter and billable state, for filters; "
        "with dateOfService, counted before that filter, as totalCount is."
    ))
    async def facets(self) -> SearchFacets:
        if self.count_facets is None:
            return SearchFacets(systems=[], chapters=[], billable=[])
        return SearchFacets.of(await self.count_facets())


UNLOADED = {
    "CPT": "No CPT data is loaded: CPT descriptors are licensed by the AMA, and an operator "
           "imports the licensed files with `medcode import cpt --file ... --release ...`.",
    "HCPCS": "No HCPCS Level II data is loaded: an operator imports the CMS release file "
             "with `medcode import hcpcs --file ...`.",
}


def unloaded_notices(systems: list[str]) -> list[str]:
    return [UNLOADED.get(s, f"No {s} data is loaded yet.") for s in systems]


NOTE_LABELS = {
    "inclusion_terms": "Inclusion terms",
    "includes": "Includes",
    "excludes1": "Excludes1",
    "excludes2": "Excludes2",
    "code_first": "Code first",
    "use_additional_code": "Use additional code",
    "code_also": "Code also",
    "notes": "Notes",
    "seven_character_note": "7th character note",
}


@strawberry.type
class NoteLink:
    text: str = strawberry.field(description="the note that names the code")
    code: str
    title: str


@strawberry.type
class InstructionalNote:
    kind: str = strawberry.field(description="e.g. excludes1, code_first")
    label: str = strawberry.field(description="as the tabular prints it, e.g. 'Excludes1'")
    notes: list[str]
    source: str = strawberry.field(description="the code, block or chapter it is written on")
    inherited: bool = strawberry.field(description="written on a level above this code")
    links: list[NoteLink] = strawberry.field(description="codes the notes point to")


@strawberry.type
class PcsAxis:
    position: int
    axis: str = strawberry.field(description="Section, Body System, Root Operation, ...")
    value: str
    meaning: str
    definition: str | None


@strawberry.type
class Icd9Crosswalk:
    """A General Equivalence Mapping from an ICD-9-CM procedure code to this code."""

    icd9: str
    description: str | None
    approximate: bool
    no_map: bool
    combination: bool


@strawberry.type
class IndexEntry:
    term: str
    text: str


@strawberry.type
class SeventhCharacter:
    character: str
    meaning: str


def _day(iso: str | None) -> date | None:
    return date.fromisoformat(iso) if iso else None


@strawberry.type
class CodeChange:
    """One change in a code's history."""

    release: str
    change: str = strawberry.field(description="added, revised or deleted")
    effective_date: date | None = strawberry.field(
        default=None, description="the day the release took effect (null when it names none)"
    )


@strawberry.type
class CodeSetChange:
    """A change one release made to one code: an item of codeChanges."""

    system: CodeSystem
    code: str
    change: str = strawberry.field(description="added, revised or deleted")
    release: str
    effective_date: date | None
    title: str = strawberry.field(
        description="as the release left it; for a deleted code, its last title"
    )
    previous_title: str | None = strawberry.field(
        description="the title before a revision that changed it"
    )

    @classmethod
    def of(cls, item: lookup.ReleaseChange) -> CodeSetChange:
        return cls(system=CodeSystem(item.system), code=item.code, change=item.change,
                   release=item.release, effective_date=_day(item.effective),
                   title=item.title, previous_title=item.previous_title)


@strawberry.type
class CodeChangeEdge:
    cursor: str
    node: CodeSetChange


@strawberry.type
class CodeChangeConnection:
    edges: list[CodeChangeEdge]
    page_info: PageInfo
    total_count: int


@strawberry.type
class CodeSetRelease:
    """A release of a code set as imported, with how many entries it changed."""

    release: str
    effective_date: date | None = strawberry.field(
        description="the day it took effect (null when the release names no date)"
    )
    source: str = strawberry.field(description="the file it was read from")
    added: int
    revised: int
    deleted: int

    @classmethod
    def of(cls, info: lookup.ReleaseInfo) -> CodeSetRelease:
        return cls(release=info.release, effective_date=_day(info.effective),
                   source=info.source, added=info.added, revised=info.revised,
                   deleted=info.deleted)


@strawberry.type
class Abbreviation:
    short: str
    meaning: str


@strawberry.type(description=(
    "A code in plain words, generated from its own official data only (title, notes, "
    "7th characters, PCS axes); nothing is invented. 'text' is the whole of it."
))
class PlainLanguage:
    text: str
    summary: str = strawberry.field(description="what the code is, and whether it is billable")
    covers: list[str] = strawberry.field(description="what it covers and includes")
    excludes: list[str] = strawberry.field(description="Excludes1/Excludes2, in plain words")
    instructions: list[str] = strawberry.field(
        description="code first, use additional code, code also, in plain words"
    )
    seventh_character: str | None = strawberry.field(
        description="what this code's 7th character means (or which ones its codes take)"
    )
    procedure: str | None = strawberry.field(description="an ICD-10-PCS code's axes as a sentence")
    abbreviations: list[Abbreviation] = strawberry.field(description="the ones expanded")
    source: str = strawberry.field(description="what it was generated from")

    @classmethod
    def of(cls, described: plain_language.PlainLanguage) -> PlainLanguage:
        return cls(
            text=described.text, summary=described.summary, covers=described.covers,
            excludes=described.excludes, instructions=described.instructions,
            seventh_character=described.seventh_character, procedure=described.procedure,
            abbreviations=[Abbreviation(short=a.short, meaning=a.meaning)
                           for a in described.abbreviations],
            source=described.source,
        )


@strawberry.type
class CodePage:
    system: CodeSystem
    code: str
    title: str
    billable: bool
    locked: bool
    remaining_views: int | None
    # Full content: null while the page is locked.
    kind: str | None = None
    chapter: str | None = None
    hierarchy: list[CodeSummary] | None = strawberry.field(
        default=None, description="from the chapter down to the parent"
    )
    children: list[CodeSummary] | None = None
    siblings: list[CodeSummary] | None = None
    notes: list[InstructionalNote] | None = None
    seventh_characters: list[SeventhCharacter] | None = None
    seventh_characters_source: str | None = strawberry.field(
        default=None, description="where the 7th-character table is defined"
    )
    history: list[CodeChange] | None = None
    axes: list[PcsAxis] | None = strawberry.field(
        default=None, description="ICD-10-PCS: the meaning of each of the 7 characters"
    )
    icd9_crosswalk: list[Icd9Crosswalk] | None = None
    index_entries: list[IndexEntry] | None = strawberry.field(
        default=None, description="Alphabetic index entries that lead here"
    )
    next_step: str | None = strawberry.field(
        default=None, description="what to do to unlock the page, when it is locked"
    )
    plain_language: PlainLanguage | None = strawberry.field(
        default=None, description="the code in plain words, from its official data only"
    )

    @classmethod
    def of(cls, detail: lookup.CodeDetail, *, locked: bool, remaining_views: int | None,
           next_step: str | None = None) -> CodePage:
        public = cls(system=CodeSystem(detail.system), code=detail.code, title=detail.title,
                     billable=detail.billable, locked=locked, remaining_views=remaining_views,
                     next_step=next_step)
        if locked:
            return public
        public.kind = detail.kind
        public.chapter = detail.chapter
        public.hierarchy = [CodeSummary.of(a) for a in detail.ancestors]
        public.children = [CodeSummary.of(c) for c in detail.children]
        public.siblings = [CodeSummary.of(c) for c in detail.siblings]
        public.notes = [
            InstructionalNote(
                kind=g["kind"], label=NOTE_LABELS.get(g["kind"], g["kind"]), notes=g["notes"],
                source=g["source"], inherited=g["source"] != detail.code,
                links=[NoteLink(**link) for link in g["links"]],
            )
            for g in detail.notes
        ]
        public.seventh_characters = [
            SeventhCharacter(character=c, meaning=m) for c, m in detail.seven_character
        ]
        public.seventh_characters_source = detail.seven_character_source
        details = detail.details
        public.axes = [
            PcsAxis(position=a["position"], axis=a["axis"], value=a["value"],
                    meaning=a["meaning"], definition=a.get("definition"))
            for a in details.get("axes", [])
        ]
        public.icd9_crosswalk = [
            Icd9Crosswalk(icd9=g["icd9"], description=g.get("description"),
                          approximate=bool(g.get("approximate")), no_map=bool(g.get("no_map")),
                          combination=bool(g.get("combination")))
            for g in details.get("gems", [])
        ]
        public.index_entries = [
            IndexEntry(term=e["term"], text=e["text"]) for e in details.get("index_entries", [])
        ]
        public.plain_language = PlainLanguage.of(detail.plain_language)
        public.history = [CodeChange(release=h["release"], change=h["change"],
                                     effective_date=_day(h.get("effective")))
                          for h in detail.history]
        return public


@strawberry.type
class CodeNotFound:
    message: str


CodePageResult = Annotated[CodePage | CodeNotFound, strawberry.union("CodePageResult")]


@strawberry.type
class Guideline:
    """A paragraph of the official coding guidelines, e.g. ICD-10-PCS B3.1a."""

    id: str
    section: str
    topic: str
    text: str


@strawberry.type
class IndexTerm:
    """An Alphabetic Index entry, with the codes or tables it points to."""

    term: str
    text: str
    codes: list[str]
