"""What a search index holds and how it is asked, for any product's document type.

A product describes its documents once (``Schema``: the text fields searched, with their
weights; keyword fields filtered and counted; an optional identifier matched by prefix)
and says how one of its documents is indexed and read back (``DocumentType``). Every
backend (tantivy embedded, OpenSearch distributed) implements ``SearchIndex`` over any
such type and only *retrieves candidates* for a ``QueryPlan``; the product's own ranker
decides the final order, so its relevance cannot drift between modes.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

D = TypeVar("D")  # a product's document type
Value = str | bool  # what a keyword field holds


@dataclass(frozen=True)
class TextField:
    """Searched words: folded, stemmed, and the last query word also as a prefix."""

    name: str
    boost: float = 1.0


@dataclass(frozen=True)
class KeywordField:
    """An exact value, for filters and facets (``kind`` is str or bool)."""

    name: str
    kind: type = str


@dataclass(frozen=True)
class FacetGroup:
    """Counts of matches by the values of ``fields`` (several: counted by their tuple),
    leaving out the plan's own filter on ``ignores`` (disjunctive facets)."""

    name: str
    fields: tuple[str, ...]
    ignores: str


@dataclass(frozen=True)
class Schema:
    name: str  # names the backend's stored layout: letters, digits, "_"
    text: tuple[TextField, ...]
    keywords: tuple[KeywordField, ...] = ()
    # An identifier typed in full or in part ("I219", "I21"): matches by prefix, ahead of
    # any word match, shortest first.
    key: bool = False
    facets: tuple[FacetGroup, ...] = ()

    def keyword(self, name: str) -> KeywordField:
        for kw in self.keywords:
            if kw.name == name:
                return kw
        raise KeyError(f"{self.name} has no keyword field {name!r}")


@dataclass(frozen=True)
class Indexed:
    """One document as backends index it."""

    doc_id: str
    text: Mapping[str, Sequence[str]]  # text field -> its texts (several: each matched alone)
    keywords: Mapping[str, Value | None] = field(default_factory=dict)
    key: str | None = None
    stored: Mapping[str, Any] = field(default_factory=dict)  # JSON: what ``load`` reads


class DocumentType(Protocol[D]):
    """How a product's documents are indexed and read back."""

    schema: Schema

    def index(self, doc: D) -> Indexed: ...

    def load(self, stored: Mapping[str, Any]) -> D: ...


@dataclass(frozen=True)
class QueryPlan:
    """A search request after the product's analysis, independent of the backend."""

    words: tuple[str, ...]  # folded lower-case word tokens; the last one may be a prefix
    key: str | None = None  # an identifier or its start, as indexed ("I219", "E116")
    filters: tuple[tuple[str, tuple[Value, ...]], ...] = ()  # keyword field, allowed values
    match_all: bool = True  # every word must match (else any word)
    window: int = 200  # how many candidates to return for re-ranking
    count: bool = True  # whether ``total`` must be exact (else at least what is returned)
    # Every match or none: no documents (only ``total``) when more match than ``window``.
    # For a plan worth asking only if it returns them all: the documents are not read.
    whole: bool = False

    @property
    def prefix(self) -> str | None:
        """The word also matched as the start of longer ones: the last, unless it is a
        single letter ("d and c", "n/v"), which begins most words in the index."""
        last = self.words[-1] if self.words else ""
        return last if len(last) > 1 else None

    def filters_without(self, name: str | None) -> tuple[tuple[str, tuple[Value, ...]], ...]:
        return tuple(f for f in self.filters if f[0] != name)


@dataclass(frozen=True)
class Candidates(Generic[D]):
    documents: list[D]
    # Every document matching the plan, not only those returned; when the plan does not
    # ask for a count, at least ``len(documents)`` and more than it if more match.
    total: int


@dataclass(frozen=True)
class Facets:
    """How many matches fall under each value of each ``FacetGroup``, by group name.

    Only values with at least one match are listed; a match missing a field's value is
    in no count of that group.
    """

    groups: Mapping[str, Mapping[Hashable, int]] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Mapping[Hashable, int]:
        return self.groups.get(name, {})


@dataclass(frozen=True)
class Checkpoint:
    """How far a consumer has applied a source's events into an index."""

    consumer: str
    source: str
    position: int  # notification id in the source's log
    cursor: int  # the bus's resume point (Kafka offset, or log position)


@dataclass(frozen=True)
class IndexChange(Generic[D]):
    upserts: list[D] = field(default_factory=list)
    deletions: list[str] = field(default_factory=list)  # doc ids


class SearchIndex(Protocol[D]):
    """One version of an index."""

    name: str

    async def write(self, change: IndexChange[D], checkpoint: Checkpoint) -> None:
        """Apply the change and record the checkpoint.

        Atomic where the store allows (tantivy: one commit). Elsewhere writes are
        idempotent by document id and the checkpoint is stored only after they succeed.
        """

    async def checkpoint(self, consumer: str, source: str) -> Checkpoint | None: ...

    async def compact(self) -> None:
        """After a bulk load (a first import, a rebuild): the version in as few segments
        as its engine allows, the same documents and checkpoints. Searches are set up
        once per segment; a bulk load leaves several."""

    async def candidates(self, plan: QueryPlan) -> Candidates[D]: ...

    async def candidates_each(self, plans: Sequence[QueryPlan]) -> list[Candidates[D]]:
        """Each plan's ``candidates``, in order: in one request where the backend takes
        one (OpenSearch's ``_msearch``), one after the other where searching is work in
        this process (tantivy), which interleaving with other requests only prolongs."""

    async def facets(self, plan: QueryPlan) -> Facets:
        """Exact counts over every entry ``candidates`` would count in ``total``, except
        that each group leaves out the plan's filter on its ``ignores`` field."""

    async def get(self, doc_id: str) -> D | None: ...

    async def count(self) -> int: ...

    async def documents(self) -> list[D]:
        """Every document, ordered by doc id (for verification and derived data)."""

    async def listing(
        self, field: str, value: Value, offset: int, limit: int
    ) -> tuple[list[D], int]:
        """One page of the documents whose keyword ``field`` holds ``value``, in doc-id
        order, and how many there are (a product's listings: lookup's code index and
        sitemap)."""


class SearchCatalog(Protocol[D]):
    """The versioned indexes of one backend and the alias that names the live one."""

    async def live(self) -> SearchIndex[D]:
        """The index searches are answered from (created on first use)."""

    async def create_version(self) -> SearchIndex[D]:
        """A new, empty index version, not yet live."""

    async def promote(self, index: SearchIndex[D]) -> None:
        """Point the alias at ``index`` atomically and drop older versions."""

    async def close(self) -> None: ...
