"""Lookup's search document: one code-set entry, and how the shared search layer indexes,
filters and counts it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from services.lookup.search.readings import Reading, restore
from services.lookup.search.search_readings import keep
from services.shared.search.model import (
    FacetGroup,
    Facets,
    Indexed,
    KeywordField,
    QueryPlan,
    Schema,
    TextField,
    Value,
)


def code_doc_id(system: str, code: str) -> str:
    """The search document id of a code-set entry: "ICD10CM:I21.9"."""
    return f"{system}:{code}"


# Its own ``__init__``: the one a dataclass generates runs as interpreted Python even in a
# compiled module (15,000 instructions a document, 6.9 % of a first-time search's, which
# makes ~120 from the store); this one, compiled (deploy/compile.py), stores the fields
# natively (730). Still frozen: the documents an index keeps read are shared by searches.
@dataclass(frozen=True, init=False)
class CodeDocument:
    system: str  # a CodeSystem value: "ICD10CM", "ICD10PCS", "HCPCS", "CPT"
    code: str  # display form: "I21.9", "0DTJ4ZZ"
    title: str
    billable: bool
    kind: str  # "chapter" | "block" | "category" | "code"
    chapter: str | None  # chapter id the entry sits under, e.g. "9"
    parent: str | None
    terms: tuple[str, ...]  # inclusion terms, index entries, synonyms: searchable, not shown
    version: int  # aggregate version that produced this document
    # Read for every candidate of every plan (gathering._union): set once, as a field. (A
    # functools.cached_property takes a lock on first access in Python 3.11: half again
    # the cost of making the document, for each of the ~250 a first-time search reads.)
    doc_id: str = field(init=False, compare=False, repr=False)

    def __init__(
        self, system: str, code: str, title: str, billable: bool, kind: str,
        chapter: str | None = None, parent: str | None = None, terms: tuple[str, ...] = (),
        version: int = 0,
    ) -> None:
        object.__setattr__(self, "system", system)
        object.__setattr__(self, "code", code)
        object.__setattr__(self, "title", title)
        object.__setattr__(self, "billable", billable)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "chapter", chapter)
        object.__setattr__(self, "parent", parent)
        object.__setattr__(self, "terms", terms)
        object.__setattr__(self, "version", version)
        object.__setattr__(self, "doc_id", code_doc_id(system, code))

    @property
    def compact(self) -> str:
        """The code as coders type it fastest: no dot, upper case ("I219")."""
        return self.code.replace(".", "").replace("-", "").upper()


# Entries are found by their title (weighing twice) and their searchable terms, filtered
# and counted by code system, chapter and billable state; the code is the key.
CODE_SCHEMA: Final = Schema(
    name="codes",
    text=(TextField("title", 2.0), TextField("terms")),
    keywords=(KeywordField("system"), KeywordField("chapter"), KeywordField("billable", bool)),
    key=True,
    facets=(
        FacetGroup("systems", ("system",), "system"),
        # By (system, chapter): chapter ids repeat across systems ("9" is an ICD-10-CM
        # chapter and a PCS section), and a chapter's title is only known with its system.
        FacetGroup("chapters", ("system", "chapter"), "chapter"),
        FacetGroup("billable", ("billable",), "billable"),
    ),
)


class CodeDocuments:
    """The ``DocumentType`` of code-set entries."""

    schema = CODE_SCHEMA

    def index(self, doc: CodeDocument) -> Indexed:
        return Indexed(
            doc_id=doc.doc_id,
            text={"title": (doc.title,), "terms": doc.terms},
            keywords={"system": doc.system, "chapter": doc.chapter, "billable": doc.billable},
            key=doc.compact,
            stored={
                "system": doc.system, "code": doc.code, "title": doc.title,
                "billable": doc.billable, "kind": doc.kind, "chapter": doc.chapter,
                "parent": doc.parent, "terms": list(doc.terms), "version": doc.version,
                # Read now, rather than by each search that ranks the entry (readings).
                "title_reading": Reading(doc.title).kept(),
            },
        )  # fmt: skip

    def load(self, stored: Mapping[str, Any]) -> CodeDocument:
        # As a dict (what both backends hand over), read by the compiled dict operations
        # rather than a Mapping's methods, called by name: a load made ~120 times a
        # first-time search.
        body = stored if isinstance(stored, dict) else dict(stored)
        title: str = body["title"]
        if (reading := restore(title, body.get("title_reading"))) is not None:
            keep(reading)  # the ranker reads every candidate's title
        return CodeDocument(
            system=body["system"],
            code=body["code"],
            title=title,
            billable=bool(body["billable"]),
            kind=body["kind"],
            chapter=body.get("chapter"),
            parent=body.get("parent"),
            terms=tuple(body.get("terms") or ()),
            version=int(body.get("version") or 0),
        )


CODES: Final = CodeDocuments()


def code_plan(
    words: tuple[str, ...] = (),
    code: str | None = None,
    *,
    systems: tuple[str, ...] = (),
    billable_only: bool = False,
    chapter: str | None = None,
    match_all: bool = True,
    window: int = 200,
    count: bool = True,
) -> QueryPlan:
    """A plan for code-set entries: a code typed (compact) and lookup's filters."""
    filters: list[tuple[str, tuple[Value, ...]]] = []
    if systems:
        filters.append(("system", tuple(systems)))
    if billable_only:
        filters.append(("billable", (True,)))
    if chapter is not None:
        filters.append(("chapter", (chapter,)))
    return QueryPlan(
        words=words, key=code or None, filters=tuple(filters), match_all=match_all,
        window=window, count=count,
    )


@dataclass(frozen=True)
class CodeFacets:
    """How many entries matching a plan fall under each system, (system, chapter) and
    billable state; each group ignores the plan's filter on its own field."""

    systems: dict[str, int] = field(default_factory=dict)
    chapters: dict[tuple[str, str], int] = field(default_factory=dict)
    billable: dict[bool, int] = field(default_factory=dict)

    @classmethod
    def summed(cls, parts: Iterable[CodeFacets]) -> CodeFacets:
        """The counts of several disjoint sets of entries, added up."""
        systems: Counter[str] = Counter()
        chapters: Counter[tuple[str, str]] = Counter()
        billable: Counter[bool] = Counter()
        for part in parts:
            systems.update(part.systems)
            chapters.update(part.chapters)
            billable.update(part.billable)
        return cls(dict(systems), dict(chapters), dict(billable))

    @classmethod
    def of(cls, facets: Facets) -> CodeFacets:
        return cls(
            {str(k): n for k, n in facets["systems"].items()},
            {_pair(k): n for k, n in facets["chapters"].items()},
            {bool(k): n for k, n in facets["billable"].items()},
        )


def _pair(key: Hashable) -> tuple[str, str]:
    assert isinstance(key, tuple)
    return str(key[0]), str(key[1])
