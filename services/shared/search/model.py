"""What the code-search index holds and how it is asked.

Both backends (SQLite FTS5 embedded, OpenSearch distributed) implement ``SearchIndex``
and only *retrieve candidates*; the final order comes from one shared ranker
(``services.shared.search.ranking``) so that relevance cannot drift between modes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class CodeDocument:
    system: str  # a CodeSystem value: "ICD10CM", "ICD10PCS", "HCPCS", "CPT"
    code: str  # display form: "I21.9", "0DTJ4ZZ"
    title: str
    billable: bool
    kind: str  # "chapter" | "block" | "category" | "code"
    chapter: str | None = None  # chapter id the entry sits under, e.g. "9"
    parent: str | None = None
    terms: tuple[str, ...] = ()  # inclusion terms, index entries, synonyms: searchable, not shown
    version: int = 0  # aggregate version that produced this document

    @property
    def doc_id(self) -> str:
        return f"{self.system}:{self.code}"

    @property
    def compact(self) -> str:
        """The code as coders type it fastest: no dot, upper case ("I219")."""
        return self.code.replace(".", "").replace("-", "").upper()


@dataclass(frozen=True)
class QueryPlan:
    """A search request after analysis, independent of the backend."""

    words: tuple[str, ...]  # folded lower-case word tokens; the last one may be a prefix
    code: str | None = None  # compact upper-case code or code prefix ("I219", "E116")
    systems: tuple[str, ...] = ()
    billable_only: bool = False
    chapter: str | None = None
    match_all: bool = True  # every word must match (else any word)
    window: int = 200  # how many candidates to return for re-ranking

    @property
    def prefix(self) -> str | None:
        """The word also matched as the start of longer ones: the last, unless it is a
        single letter ("d and c", "n/v"), which begins most words in the index."""
        last = self.words[-1] if self.words else ""
        return last if len(last) > 1 else None


@dataclass(frozen=True)
class Candidates:
    documents: list[CodeDocument]
    total: int  # every document matching the plan, not only those returned


@dataclass(frozen=True)
class Facets:
    """How many entries matching a plan fall under each value of the filterable fields.

    Disjunctive, as people expect of facets: each group ignores the plan's own filter on
    its field (and keeps the others), so it tells what choosing another value would find.
    Only values with at least one entry are listed; entries without a chapter are in no
    chapter's count.
    """

    systems: dict[str, int] = field(default_factory=dict)
    # By (system, chapter): chapter ids repeat across systems ("9" is an ICD-10-CM chapter
    # and a PCS section), and a chapter's title is only known with its system.
    chapters: dict[tuple[str, str], int] = field(default_factory=dict)
    billable: dict[bool, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Checkpoint:
    """How far a consumer has applied a source's events into an index."""

    consumer: str
    source: str
    position: int  # notification id in the source's log
    cursor: int  # the bus's resume point (Kafka offset, or log position)


@dataclass(frozen=True)
class IndexChange:
    upserts: list[CodeDocument] = field(default_factory=list)
    deletions: list[str] = field(default_factory=list)  # doc ids


class SearchIndex(Protocol):
    """One version of the code-search index."""

    name: str

    async def write(self, change: IndexChange, checkpoint: Checkpoint) -> None:
        """Apply the change and record the checkpoint.

        Atomic where the store allows (SQLite). Elsewhere writes are idempotent by
        document id and the checkpoint is stored only after they succeed.
        """

    async def checkpoint(self, consumer: str, source: str) -> Checkpoint | None: ...

    async def candidates(self, plan: QueryPlan) -> Candidates: ...

    async def facets(self, plan: QueryPlan) -> Facets:
        """Exact counts over every entry ``candidates`` would count in ``total``, except
        that each group leaves out the plan's filter on its own field."""

    async def get(self, doc_id: str) -> CodeDocument | None: ...

    async def count(self) -> int: ...

    async def documents(self) -> list[CodeDocument]:
        """Every document, ordered by doc id (for verification and tests)."""

    async def listing(self, system: str, offset: int, limit: int) -> tuple[list[CodeDocument], int]:
        """One page of a system's entries in doc-id order, and how many it has (for a
        code index and the sitemap)."""


class SearchCatalog(Protocol):
    """The versioned indexes of one backend and the alias that names the live one."""

    async def live(self) -> SearchIndex:
        """The index searches are answered from (created on first use)."""

    async def create_version(self) -> SearchIndex:
        """A new, empty index version, not yet live."""

    async def promote(self, index: SearchIndex) -> None:
        """Point the alias at ``index`` atomically and drop older versions."""

    async def close(self) -> None: ...
