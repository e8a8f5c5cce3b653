"""One tantivy index version of one document type: a ``SearchIndex``."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic

import tantivy
from tantivy import Query

from services.shared.search.embedded.layout import (
    CHECKPOINT,
    DOC,
    ID,
    WORDS,
    analyzer,
    keyword_field,
    keyword_value,
    stored,
    tantivy_schema,
)
from services.shared.search.embedded.queries import (
    Hit,
    Planner,
    facet_counts,
    key_hits,
    matched,
    word_hits,
)
from services.shared.search.embedded.writes import (
    IndexDropped,
    Writes,
    checkpoint_name,
    read_checkpoint,
)
from services.shared.search.model import (
    Candidates,
    Checkpoint,
    D,
    DocumentType,
    Facets,
    IndexChange,
    QueryPlan,
    Value,
)
from services.shared.search.snapshots import held, hold
from services.shared.threads import run_in_threadpool

if TYPE_CHECKING:
    from services.shared.search.embedded.catalog import TantivyCatalog

log = logging.getLogger(__name__)

# Bytes of stored documents compressed together (tantivy's default: 16 KiB). A search
# reads stored documents at random, about 145 a first-time search, and each read
# decompresses its whole block. ICD-10-CM and -PCS, 20,000 random reads: 9.1 microseconds
# a read with 16 KiB blocks, 5.2 with 4 KiB, 4.4 with 2 KiB, for a document store of 16.5,
# 23.7 and 31.4 MB (mapped, shared by the serving processes). With 4 KiB, lookup's engine
# alone spent 10 % less CPU a first-time search (bench/throughput.py's queries; two
# alternated pairs, 6.74 and 7.04 -> 6.01 and 6.33 ms).
STORE_BLOCK = 4096


def open_index(path: Path, schema: tantivy.Schema, create: bool) -> tantivy.Index:
    """A tantivy index at ``path``, created with ``schema`` when asked.

    A new one keeps each segment's documents in doc id order: where a window ends inside
    a group of tied matches, tantivy returns those first in its segments, so ties are
    broken by doc id as OpenSearch breaks them (queries' contract). In the order written,
    two builds of the same data differed in the first result of 88 and the top five of
    244 of 3,000 first-time queries (bench/traffic.py); kept so, two builds answered all
    3,000 alike."""
    if create:
        tantivy.Index(schema, path=str(path), reuse=False, sort_by_field=ID)
        _settle(path)
    index = tantivy.Index.open(str(path))
    index.register_tokenizer(WORDS, analyzer())
    # Other processes' commits are seen as soon as tantivy notices meta.json change.
    index.config_reader(reload_policy="commit")
    return index


def _settle(path: Path) -> None:
    """What the bindings cannot say of a new index, said before any document is written:
    its document store's block size (STORE_BLOCK), and that the stored JSON (``_doc``) is
    stored, never searched.

    tantivy reads both from the index's ``meta.json`` as it opens the index, writes and
    merges every segment by them, and keeps them in each ``meta.json`` it writes."""
    meta_file = path / "meta.json"
    meta = json.loads(meta_file.read_text())
    meta.setdefault("index_settings", {})["docstore_blocksize"] = STORE_BLOCK
    for field in meta["schema"]:
        if field["name"] == DOC and field["type"] == "text":
            field["options"]["indexing"] = None
    written = meta_file.with_name("meta.json.new")
    written.write_text(json.dumps(meta))
    written.replace(meta_file)


def stores_text(meta: dict[str, Any]) -> bool:
    """Whether a version (its ``meta.json``) keeps its stored JSON as text
    (layout.tantivy_schema); a version created before keeps it as bytes, and is written
    so."""
    return any(f["name"] == DOC and f["type"] == "text" for f in meta["schema"])


def sorted_by_id(meta: dict[str, Any]) -> bool:
    """Whether a version (its ``meta.json``) keeps each segment's documents in doc id
    order (open_index)."""
    return bool((meta.get("index_settings", {}).get("sort_by_field") or {}).get("field") == ID)


def outdated(meta: dict[str, Any]) -> list[str]:
    """How a version (its ``meta.json``) is laid out otherwise than a new one (``_settle``):
    it is searched correctly (more slowly, or with ties at a window's edge broken
    otherwise) until a rebuild writes a new version."""
    found = []
    settings = meta.get("index_settings", {})
    block = settings.get("docstore_blocksize")
    if block != STORE_BLOCK:
        found.append(f"document store blocks of {block} bytes, not {STORE_BLOCK}")
    if not stores_text(meta):
        found.append("stored JSON as bytes, not text")
    if not sorted_by_id(meta):
        found.append("documents in the order written, not by doc id (tied matches at a"
                     " window's edge are not broken by doc id)")
    return found


class _View(Generic[D]):
    """What a search reads one version through: one searcher and its planner, the
    documents read, by their address in that searcher, and whether tantivy's own order of
    tied matches is the doc id's (one segment, kept in doc id order)."""

    __slots__ = ("by_id", "planner", "read", "searcher")

    def __init__(self, searcher: tantivy.Searcher, planner: Planner, by_id: bool) -> None:
        self.searcher = searcher
        self.planner = planner
        self.read: dict[int, tuple[str, D]] = {}
        self.by_id = by_id


class TantivyIndex(Generic[D]):
    def __init__(
        self,
        catalog: TantivyCatalog[D],
        name: str,
        path: Path,
        doc_type: DocumentType[D],
        *,
        create: bool = False,
    ) -> None:
        self.catalog = catalog
        self.name = name
        self.path = path
        self.doc_type = doc_type
        self._index = open_index(path, tantivy_schema(doc_type.schema), create)
        # Queries name fields by their number in a schema: the version's own, which may
        # have been laid out by an earlier release (layout.tantivy_schema).
        self._tschema = self._index.schema
        meta = json.loads((path / "meta.json").read_text())
        self._sorted = sorted_by_id(meta)
        self._writes = Writes(doc_type, self._index, str(path), as_text=stores_text(meta))
        if reasons := outdated(meta):
            log.warning(
                "the search index %s was created by an earlier version (%s): it is searched"
                " correctly, more slowly or with ties otherwise broken; rebuilding it"
                " (`medcode projections rebuild`, naming the projection that writes it) lays"
                " it out anew", name, "; ".join(reasons))

    def __repr__(self) -> str:
        return f"TantivyIndex({self.name!r})"

    def close(self) -> None:
        self._writes.close()

    def stamp(self) -> int:
        """When the last commit was published (``meta.json`` is replaced by each)."""
        try:
            return (self.path / "meta.json").stat().st_mtime_ns
        except FileNotFoundError:
            return 0

    def _dropped(self) -> bool:
        return not self.path.is_dir()

    def _load(self, doc: tantivy.Document) -> D:
        return self.doc_type.load(stored(doc)["doc"])

    # -- writes ---------------------------------------------------------------------

    async def write(self, change: IndexChange[D], checkpoint: Checkpoint) -> None:
        if self._dropped():  # a promote replaced it: the writer follows the alias
            raise IndexDropped(f"{self.name} was dropped (a newer version was promoted)")
        await run_in_threadpool(self._writes.write, change, checkpoint)

    async def compact(self) -> None:
        if not self._dropped():
            await run_in_threadpool(self._writes.compact, self.each_document())

    # -- reads ----------------------------------------------------------------------

    async def checkpoint(self, consumer: str, source: str) -> Checkpoint | None:
        if self._dropped():
            return None
        searcher = self._index.searcher()
        query = Query.term_query(self._tschema, CHECKPOINT, checkpoint_name(consumer, source))
        hits = searcher.search(query, 1, count=False).hits
        if not hits:
            return None
        return read_checkpoint(stored(searcher.doc(hits[0][1])), consumer, source)

    def _view(self) -> _View[D] | None:
        """The view of this version that the search under way reads it through, taken
        now if this is its first plan here (services.shared.search.snapshots); a view of
        its own outside a search. None once a promote has dropped this version (a view
        already held still reads it: its searcher keeps the files it opened)."""
        view = held(self)
        if isinstance(view, _View):
            return view
        if self._dropped():
            return None
        taken = self._new_view()
        hold(self, taken)
        return taken

    def _new_view(self) -> _View[D]:
        searcher = self._index.searcher()
        planner = Planner(self.doc_type.schema, self._tschema, searcher)
        return _View(searcher, planner, self._sorted and searcher.num_segments == 1)

    def candidates_now(self, plan: QueryPlan) -> Candidates[D]:
        if not plan.key and not plan.words:
            return Candidates([], 0)
        view = self._view()
        if view is None:
            live = self.catalog.live_now()
            if live is not self:
                return live.candidates_now(plan)
            view = self._new_view()
        searcher, planner = view.searcher, view.planner
        window = max(0, plan.window)
        keyed: list[Hit] = []
        scored: list[list[Hit]] = []
        total = 0
        parts = planner.parts(plan)
        if planner.key_query(plan) is not None:
            keyed, total = key_hits(searcher, parts.pop(0), window)
        taken = len(keyed)
        for query in parts:
            hits, n = word_hits(searcher, query, window - taken, plan.count)
            scored.append(hits)
            taken += len(hits)
            total += n
        if plan.whole and total > taken:
            return Candidates([], total)
        documents = [doc for _, doc in self._read(view, keyed)]
        for hits in scored:
            found = self._read(view, hits)
            if view.by_id:  # ties come by address, so by doc id: no sort (1.4 % of a search)
                documents += [doc for _, doc in found]
                continue
            ranked = sorted(zip(hits, found, strict=True), key=lambda h: (-h[0][0], h[1][0]))
            documents += [doc for _, (_, doc) in ranked]  # the doc id breaks score ties
        return Candidates(documents, total)

    def _read(self, view: _View[D], hits: list[Hit]) -> list[tuple[str, D]]:
        """(doc id, document) of each hit, read from the store once a view: the plans of
        one search find many of the same documents (the slowest 5 % of first-time
        searches read 401 a search, 279 of them distinct).

        None is kept from one search to the next. First-time searches found a fifth of
        their candidates among the 5,000 documents last read, kept in each serving
        process; but those were new again at every young-generation collection of the
        garbage collector, which walked them all (with the readings of their texts: 37 ms,
        every 0.5 s under first-time load; 6 ms without either)."""
        found = []
        read = view.read
        for _, address in hits:
            place = address.segment_ord << 32 | address.doc
            known = read.get(place)
            if known is None:
                body = stored(view.searcher.doc(address))
                known = read[place] = (body["id"], self.doc_type.load(body["doc"]))
            found.append(known)
        return found

    async def candidates(self, plan: QueryPlan) -> Candidates[D]:
        return self.candidates_now(plan)

    async def candidates_each(self, plans: Sequence[QueryPlan]) -> list[Candidates[D]]:
        return [self.candidates_now(plan) for plan in plans]

    async def facets(self, plan: QueryPlan) -> Facets:
        if not plan.key and not plan.words:
            return Facets()
        view = self._view()
        if view is None:
            live = self.catalog.live_now()
            if live is not self:
                return await live.facets(plan)
            view = self._new_view()
        return Facets(facet_counts(view.searcher, view.planner, plan))

    async def get(self, doc_id: str) -> D | None:
        if self._dropped():
            return None
        searcher = self._index.searcher()
        hits = searcher.search(Query.term_query(self._tschema, ID, doc_id), 1, count=False).hits
        return self._load(searcher.doc(hits[0][1])) if hits else None

    def _documents_query(self) -> Query:
        return Query.exists_query(ID)

    async def count(self) -> int:
        searcher = self._index.searcher()
        return matched(searcher.search(self._documents_query(), 1, count=True))

    async def listing(
        self, field: str, value: Value, offset: int, limit: int
    ) -> tuple[list[D], int]:
        def read() -> tuple[list[D], int]:
            searcher = self._index.searcher()
            query = Query.term_query(self._tschema, keyword_field(field), keyword_value(value))
            n = matched(searcher.search(query, 1, count=True))
            if offset >= n:
                return [], n
            # The bindings sort by numeric fast fields only: order the ids here. Listings
            # are read rarely (a sitemap page, a code index page), so this stays simple.
            bodies = [stored(searcher.doc(address))
                      for _, address in searcher.search(query, n, count=False).hits]
            bodies.sort(key=lambda body: str(body["id"]))
            return [self.doc_type.load(b["doc"]) for b in bodies[offset:offset + limit]], n

        return await run_in_threadpool(read)

    def each_document(self) -> Iterator[D]:
        """Every document, in index order, read one at a time (a ``Streamed`` index: what
        is derived from a whole version need not hold all of its documents at once)."""
        searcher = self._index.searcher()
        query = self._documents_query()
        n = matched(searcher.search(query, 1, count=True))
        if n == 0:
            return
        for _, address in searcher.search(query, n, count=False).hits:
            yield self._load(searcher.doc(address))

    async def documents(self) -> list[D]:
        def read() -> list[D]:
            searcher = self._index.searcher()
            query = self._documents_query()
            n = matched(searcher.search(query, 1, count=True))
            if n == 0:
                return []
            # Loaded as read: holding every stored body as well as every document would
            # double what a whole index costs in memory while it is read.
            found: list[tuple[str, D]] = []
            for _, address in searcher.search(query, n, count=False).hits:
                body = stored(searcher.doc(address))
                found.append((body["id"], self.doc_type.load(body["doc"])))
            found.sort(key=lambda item: item[0])
            return [doc for _, doc in found]

        return await run_in_threadpool(read)
