"""GraphQL types of the lookup product (one module per type family)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import strawberry

from services.lookup import client as lookup
from services.shared.graphql import PageInfo


@strawberry.enum
class CodeSystem(Enum):
    ICD10CM = "ICD10CM"
    ICD10PCS = "ICD10PCS"
    HCPCS = "HCPCS"
    CPT = "CPT"


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
class CodeSearchEdge:
    cursor: str
    node: CodeSummary


@strawberry.type
class CodeSearchConnection:
    edges: list[CodeSearchEdge]
    page_info: PageInfo
    total_count: int


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
class InstructionalNote:
    kind: str = strawberry.field(description="e.g. excludes1, code_first")
    label: str = strawberry.field(description="as the tabular prints it, e.g. 'Excludes1'")
    notes: list[str]


@strawberry.type
class SeventhCharacter:
    character: str
    meaning: str


@strawberry.type
class CodeChange:
    release: str
    change: str = strawberry.field(description="added, revised or deleted")


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
    notes: list[InstructionalNote] | None = None
    seventh_characters: list[SeventhCharacter] | None = None
    history: list[CodeChange] | None = None
    next_step: str | None = strawberry.field(
        default=None, description="what to do to unlock the page, when it is locked"
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
        public.notes = [
            InstructionalNote(kind=k, label=NOTE_LABELS.get(k, k), notes=v)
            for k, v in detail.notes.items()
        ]
        public.seventh_characters = [
            SeventhCharacter(character=c, meaning=m) for c, m in detail.seven_character
        ]
        public.history = [CodeChange(release=h["release"], change=h["change"])
                          for h in detail.history]
        return public


@strawberry.type
class CodeNotFound:
    message: str


CodePageResult = Annotated[CodePage | CodeNotFound, strawberry.union("CodePageResult")]
