"""What the lookup service answers with: frozen values, the same from either backend.

LocalLookup builds them from the code sets; HttpLookup rebuilds them from JSON with
their ``from_dict`` (``serialise`` in client.py is the other way).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.lookup.plain_language import PlainLanguage, describe
from services.lookup.search.documents import CodeFacets


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
