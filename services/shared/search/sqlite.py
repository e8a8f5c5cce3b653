"""The embedded code-search index: SQLite FTS5 in one file, versions behind an alias row.

Each index version ``{alias}_v{N}`` is three tables: the documents, an FTS5 table of
their title and terms (Porter-stemmed, accents folded), and a contentless FTS5 table of
the same text *unstemmed*, which serves word prefixes. The second one mirrors the
OpenSearch ``.prefix`` sub-fields: a coder typing "infarcti" is on the word "infarction",
but its stem "infarct" does not begin with "infarcti", so the stemmed table alone would
find nothing. The alias row names the live version; ``promote`` moves it and drops the
older versions in one transaction, so readers see either the old index or the new one,
never a mix. Writes record the consumer's checkpoint in the same transaction as the
documents.

``candidates`` has the semantics the OpenSearch backend defines; the shared contract
suite (tests/integration/test_search_contract.py) runs the same tests on both:

- A document matches if its compact code starts with ``plan.code`` OR its title/terms
  match the words. An empty code is no code; with neither code nor words nothing matches.
- Every word (``match_all``) or any word must match, in the title or in the terms. Words
  are stemmed ("fractures" finds "fracture") and accent-folded ("sjogren" finds
  "Sjögren"); the last word also matches as the beginning of a word, the others do not.
- Filters (systems, billable_only, chapter) apply to code and word matches alike.
- Order: code matches first (shortest compact code first, so an exact code leads, then
  by code), then the other word matches by relevance: BM25 of the whole words with the
  title weighing twice the terms, plus a prefix bonus scored as OpenSearch scores its
  prefix fields (half the prefix's idf, doubled in the title); the doc id breaks ties.
- ``total`` counts every matching document once, code or words; ``window`` limits the
  documents returned, never the total.
- ``facets`` counts those same documents by system, (system, chapter) and billable, each
  group with every filter but its own.
- A search through a version that ``promote`` has since dropped is answered from the live
  version: a reader that resolved ``live()`` just before the swap gets an answer, not an
  error. ``get`` and ``checkpoint`` on a dropped version find nothing.
"""

from __future__ import annotations

import json
import math
import queue
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple, TypeVar

from starlette.concurrency import run_in_threadpool

from services.shared.search.model import (
    Candidates,
    Checkpoint,
    CodeDocument,
    Facets,
    IndexChange,
    QueryPlan,
    SearchIndex,
)

T = TypeVar("T")

# porter: "fractures" finds "fracture"; remove_diacritics: "Ménière" finds "meniere".
_TOKENIZER = "porter unicode61 remove_diacritics 2"
# The same without porter: prefixes are matched against the words as written.
_PREFIX_TOKENIZER = "unicode61 remove_diacritics 2"
_COLUMNS = "doc_id, system, code, compact, title, billable, kind, chapter, parent, terms, version"
_TITLE_WEIGHT = 2.0  # bm25 column weights: title, terms (OpenSearch boosts title^2)
_PREFIX_WEIGHT = 0.5  # a word completed from a prefix counts less than a whole word
_BATCH = 500  # rowids per IN list, well under SQLite's bound-parameter limit
_LN = "medcode_ln"  # natural log; SQLite's own ln() exists only in some builds
_ALIAS = re.compile(r"[a-z][a-z0-9_]*")  # it becomes part of table names


class _Pool:
    """A few connections shared across threads (SQLite allows one writer, many readers)."""

    def __init__(self, path: Path, size: int = 4) -> None:
        self.path = path
        self._idle: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._size = size
        self._made = 0
        self._lock = threading.Lock()
        self.write_lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.create_function(_LN, 1, math.log, deterministic=True)
        return conn

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            with self._lock:
                make = self._made < self._size
                self._made += make
            conn = self._connect() if make else self._idle.get()
        try:
            yield conn
        finally:
            self._idle.put(conn)

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


@contextmanager
def _immediate(pool: _Pool) -> Iterator[sqlite3.Connection]:
    """One write transaction: this process's writers queue on the lock, others on SQLite."""
    with pool.write_lock, pool.connection() as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


@contextmanager
def _snapshot(pool: _Pool) -> Iterator[sqlite3.Connection]:
    """One read transaction: every statement in it sees the same state of the file."""
    with pool.connection() as conn:
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("ROLLBACK")


def _table_exists(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None


def _phrase(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def _terms_text(terms: Iterable[str]) -> str:
    return " | ".join(terms)


def _document(row: tuple) -> CodeDocument:  # type: ignore[type-arg]
    return CodeDocument(
        system=row[1],
        code=row[2],
        title=row[4],
        billable=bool(row[5]),
        kind=row[6],
        chapter=row[7],
        parent=row[8],
        terms=tuple(json.loads(row[9])),
        version=row[10],
    )


class _Part(NamedTuple):
    """One disjoint part of a plan's matches: ``{with_clause} SELECT ... {where}``."""

    with_clause: str
    with_params: list[object]
    where: str  # "FROM ... WHERE ...", without the plan's filters
    where_params: list[object]
    order: str  # best candidate first


def _add(counts: dict[T, int], key: T, n: int) -> None:
    """Count ``n`` more under ``key``; a key never counted stays out, as in OpenSearch."""
    if n:
        counts[key] = counts.get(key, 0) + n


class SQLiteIndex:
    """One index version; implements ``SearchIndex``."""

    def __init__(self, pool: _Pool, name: str, alias: str | None = None) -> None:
        self.pool = pool
        self.name = name
        self.alias = alias  # the catalog's alias: where searches go once this is dropped
        self._docs = f"{name}_docs"
        self._fts = f"{name}_fts"
        self._prefix = f"{name}_prefix"

    def __repr__(self) -> str:
        return f"SQLiteIndex({self.name!r})"

    def create(self, conn: sqlite3.Connection) -> None:
        """Create the tables that are missing (inside a write transaction).

        A version written before the prefix table existed gets it, filled from its
        documents, so an old index file keeps answering prefix searches.
        """
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {self._docs} ("
            "doc_id TEXT PRIMARY KEY, system TEXT NOT NULL, code TEXT NOT NULL,"
            " compact TEXT NOT NULL, title TEXT NOT NULL, billable INTEGER NOT NULL,"
            " kind TEXT NOT NULL, chapter TEXT, parent TEXT, terms TEXT NOT NULL,"
            " version INTEGER NOT NULL)"
        )
        conn.execute(f"CREATE INDEX IF NOT EXISTS {self._docs}_compact ON {self._docs}(compact)")
        conn.execute(
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {self._fts} USING fts5("
            f"title, terms, tokenize='{_TOKENIZER}')"
        )
        if _table_exists(conn, self._prefix):
            return
        # Contentless: the text is in the documents table already. detail=column keeps
        # no positions or frequencies, which one-token prefix lookups do not need.
        conn.execute(
            f"CREATE VIRTUAL TABLE {self._prefix} USING fts5(title, terms, content='',"
            f" tokenize='{_PREFIX_TOKENIZER}', prefix='1 2 3', detail='column')"
        )
        rows = conn.execute(f"SELECT rowid, title, terms FROM {self._docs}").fetchall()
        for rowid, title, terms in rows:
            conn.execute(
                f"INSERT INTO {self._prefix} (rowid, title, terms) VALUES (?, ?, ?)",
                (rowid, title, _terms_text(json.loads(terms))),
            )

    def is_current(self, conn: sqlite3.Connection) -> bool:
        """Whether every table ``create`` makes is there."""
        return _table_exists(conn, self._prefix)

    def drop(self, conn: sqlite3.Connection) -> None:
        for table in (self._docs, self._fts, self._prefix):
            conn.execute(f"DROP TABLE IF EXISTS {table}")

    def exists(self, conn: sqlite3.Connection) -> bool:
        return _table_exists(conn, self._docs)

    # -- writes ---------------------------------------------------------------------

    def _write(self, change: IndexChange, checkpoint: Checkpoint) -> None:
        with _immediate(self.pool) as conn:
            for doc in change.upserts:
                self._upsert(conn, doc)
            for doc_id in change.deletions:
                self._delete(conn, doc_id)
            conn.execute(
                "INSERT INTO search_checkpoints (idx, consumer, source, position, cursor)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (idx, consumer, source) DO UPDATE SET"
                " position = excluded.position, cursor = excluded.cursor",
                (
                    self.name,
                    checkpoint.consumer,
                    checkpoint.source,
                    checkpoint.position,
                    checkpoint.cursor,
                ),
            )

    def _unindex_prefixes(
        self, conn: sqlite3.Connection, rowid: int, title: str, terms: str
    ) -> None:
        # A contentless table forgets a row only when told the exact text it indexed.
        conn.execute(
            f"INSERT INTO {self._prefix} ({self._prefix}, rowid, title, terms)"
            " VALUES ('delete', ?, ?, ?)",
            (rowid, title, _terms_text(json.loads(terms))),
        )

    def _upsert(self, conn: sqlite3.Connection, doc: CodeDocument) -> None:
        terms = _terms_text(doc.terms)
        row = conn.execute(
            f"SELECT rowid, title, terms FROM {self._docs} WHERE doc_id = ?", (doc.doc_id,)
        ).fetchone()
        values = (
            doc.doc_id,
            doc.system,
            doc.code,
            doc.compact,
            doc.title,
            int(doc.billable),
            doc.kind,
            doc.chapter,
            doc.parent,
            json.dumps(list(doc.terms)),
            doc.version,
        )
        if row is None:
            cur = conn.execute(
                f"INSERT INTO {self._docs} ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)", values
            )
            rowid = cur.lastrowid
            conn.execute(
                f"INSERT INTO {self._fts} (rowid, title, terms) VALUES (?, ?, ?)",
                (rowid, doc.title, terms),
            )
        else:
            rowid = row[0]
            conn.execute(
                f"UPDATE {self._docs} SET system=?, code=?, compact=?, title=?, billable=?,"
                " kind=?, chapter=?, parent=?, terms=?, version=? WHERE rowid=?",
                (*values[1:], rowid),
            )
            conn.execute(
                f"UPDATE {self._fts} SET title=?, terms=? WHERE rowid=?", (doc.title, terms, rowid)
            )
            self._unindex_prefixes(conn, rowid, row[1], row[2])
        conn.execute(
            f"INSERT INTO {self._prefix} (rowid, title, terms) VALUES (?, ?, ?)",
            (rowid, doc.title, terms),
        )

    def _delete(self, conn: sqlite3.Connection, doc_id: str) -> None:
        row = conn.execute(
            f"SELECT rowid, title, terms FROM {self._docs} WHERE doc_id = ?", (doc_id,)
        ).fetchone()
        if row is not None:
            conn.execute(f"DELETE FROM {self._docs} WHERE rowid = ?", (row[0],))
            conn.execute(f"DELETE FROM {self._fts} WHERE rowid = ?", (row[0],))
            self._unindex_prefixes(conn, *row)

    async def write(self, change: IndexChange, checkpoint: Checkpoint) -> None:
        await run_in_threadpool(self._write, change, checkpoint)

    # -- reads ----------------------------------------------------------------------

    def _checkpoint(self, consumer: str, source: str) -> Checkpoint | None:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT position, cursor FROM search_checkpoints"
                " WHERE idx = ? AND consumer = ? AND source = ?",
                (self.name, consumer, source),
            ).fetchone()
        return Checkpoint(consumer, source, row[0], row[1]) if row else None

    async def checkpoint(self, consumer: str, source: str) -> Checkpoint | None:
        return await run_in_threadpool(self._checkpoint, consumer, source)

    def _conditions(self, plan: QueryPlan) -> dict[str, tuple[str, list[object]]]:
        """The plan's filters by the field each restricts: (condition, its parameters)."""
        found: dict[str, tuple[str, list[object]]] = {}
        if plan.systems:
            marks = ",".join("?" * len(plan.systems))
            found["systems"] = (f"d.system IN ({marks})", list(plan.systems))
        if plan.billable_only:
            found["billable"] = ("d.billable = 1", [])
        if plan.chapter is not None:
            found["chapter"] = ("d.chapter = ?", [plan.chapter])
        return found

    def _filters(
        self, plan: QueryPlan, *, without: str | None = None
    ) -> tuple[str, list[object]]:
        """The plan's filters as `` AND ...`` clauses, leaving out the one on ``without``."""
        kept = [c for name, c in self._conditions(plan).items() if name != without]
        return "".join(f" AND {sql}" for sql, _ in kept), [p for _, ps in kept for p in ps]

    def _words(self, plan: QueryPlan) -> tuple[str, list[object]]:
        """A WITH clause defining ``hits(id, score)``: the word matches, lower score first.

        Scored like OpenSearch's bool query, the sum over the words: BM25 of the whole
        (stemmed) words in title and terms, plus for the last word's prefix (when the
        plan has one: ``QueryPlan.prefix``) a constant
        per field, as OpenSearch scores its norm-free, docs-only ``.prefix`` fields:
        ``0.5 * idf`` of the prefix, doubled in the title. No BM25 is computed on the
        prefix table, and sets are only ever joined: FTS5 cannot use ``rowid IN``.
        """
        phrases = [_phrase(w) for w in plan.words]
        begins = phrases[-1] + "*"
        fts, prefix = self._fts, self._prefix
        head = plan.match_all and len(phrases) > 1  # earlier words are required
        params: list[object] = [(" AND " if plan.match_all else " OR ").join(phrases)]
        bm25 = f"bm25({fts}, {_TITLE_WEIGHT}, 1.0)"
        if plan.prefix is None:
            whole = f"SELECT rowid, {bm25} FROM {fts} WHERE {fts} MATCH ?"
            return f"WITH hits(id, score) AS ({whole})", params
        params += [f"title : {begins}", f"terms : {begins}"]
        clause = (
            f"WITH whole(id, score) AS MATERIALIZED (SELECT rowid, {bm25} FROM {fts}"
            f" WHERE {fts} MATCH ?),"
            " begun(id, weight) AS MATERIALIZED (SELECT id, max(weight) FROM ("
            f"SELECT rowid AS id, {_TITLE_WEIGHT} AS weight FROM {prefix} WHERE {prefix} MATCH ?"
            f" UNION ALL SELECT rowid, 1.0 FROM {prefix} WHERE {prefix} MATCH ?) GROUP BY id),"
            # Lucene's idf, so it stays positive however common the prefix.
            f" bonus(value) AS MATERIALIZED (SELECT {_PREFIX_WEIGHT} * {_LN}(1.0 +"
            " (n_docs - n + 0.5) / (n + 0.5)) FROM (SELECT count(*) AS n FROM begun),"
            f" (SELECT count(*) AS n_docs FROM {self._docs})),"
        )
        if head:
            clause += (
                f" head(id, score) AS MATERIALIZED (SELECT rowid, {bm25} FROM {fts}"
                f" WHERE {fts} MATCH ?),"
            )
            params.append(" AND ".join(phrases[:-1]))
            begun_only = "SELECT b.id, h.score - b.weight * (SELECT value FROM bonus) AS score"
            begun_only += " FROM begun b JOIN head h ON h.id = b.id"
        else:
            begun_only = "SELECT b.id, -b.weight * (SELECT value FROM bonus) AS score"
            begun_only += " FROM begun b"
        clause += (
            " hits(id, score) AS (SELECT w.id, w.score - coalesce(b.weight, 0)"
            " * (SELECT value FROM bonus) FROM whole w LEFT JOIN begun b ON b.id = w.id"
            f" UNION ALL {begun_only} WHERE b.id NOT IN (SELECT id FROM whole))"
        )
        return clause, params

    def _by_rowid(self, conn: sqlite3.Connection, rowids: list[int]) -> list[CodeDocument]:
        """The documents with these rowids, in that order."""
        found: dict[int, CodeDocument] = {}
        for start in range(0, len(rowids), _BATCH):
            batch = rowids[start : start + _BATCH]
            marks = ",".join("?" * len(batch))
            query = f"SELECT rowid, * FROM {self._docs} WHERE rowid IN ({marks})"
            for row in conn.execute(query, batch):
                found[row[0]] = _document(row[1:])
        return [found[rowid] for rowid in rowids]

    def _parts(self, plan: QueryPlan) -> list[_Part]:
        """What the plan matches, unfiltered, as disjoint parts: code matches, then word
        matches that are not code matches. Candidates and facets both read these, so
        they count the very same entries."""
        parts: list[_Part] = []
        code = "d.compact >= ? AND d.compact < ?"
        code_params: list[object] = [plan.code, f"{plan.code}\uffff"]
        if plan.code:
            where = f"FROM {self._docs} d WHERE {code}"
            order = "length(d.compact), d.compact, d.doc_id"
            parts.append(_Part("", [], where, code_params, order))
        if plan.words:
            with_clause, params = self._words(plan)
            where = f"FROM hits h JOIN {self._docs} d ON d.rowid = h.id WHERE 1"
            if plan.code:  # those are code matches already
                where += f" AND NOT ({code})"
            not_code = code_params if plan.code else []
            parts.append(_Part(with_clause, params, where, not_code, "h.score, d.doc_id"))
        return parts

    def _query(self, conn: sqlite3.Connection, plan: QueryPlan) -> Candidates:
        window = max(0, plan.window)
        filters, filter_params = self._filters(plan)
        documents: list[CodeDocument] = []
        total = 0

        def fetch(
            with_clause: str, where: str, order: str, params: list[object], limit: int
        ) -> None:
            """Add up to ``limit`` documents in order, and count every match.

            Only rowids go through the sort (whole rows made it twice as slow); the few
            documents returned are read afterwards.
            """
            nonlocal total
            rows = conn.execute(
                f"{with_clause} SELECT d.rowid, count(*) OVER () {where} ORDER BY {order} LIMIT ?",
                (*params, limit),
            ).fetchall()
            if rows:
                total += rows[0][1]
                documents.extend(self._by_rowid(conn, [row[0] for row in rows]))
            elif limit == 0:
                count = f"{with_clause} SELECT count(*) {where}"
                total += conn.execute(count, params).fetchone()[0]

        for part in self._parts(plan):
            fetch(
                part.with_clause,
                part.where + filters,
                part.order,
                [*part.with_params, *part.where_params, *filter_params],
                window - len(documents),
            )
        return Candidates(documents, total)

    def _tally(self, conn: sqlite3.Connection, plan: QueryPlan) -> Facets:
        """Each part grouped once by system, chapter and billable; each group's count
        sums the rows that pass every filter but the one on its own field."""
        passing = [self._filters(plan, without=name) for name in ("systems", "chapter", "billable")]
        sums = ", ".join(f"sum(1{sql})" for sql, _ in passing)
        sum_params = [p for _, params in passing for p in params]
        facets = Facets()
        for part in self._parts(plan):
            rows = conn.execute(
                f"{part.with_clause} SELECT d.system, d.chapter, d.billable, {sums} {part.where}"
                " GROUP BY d.system, d.chapter, d.billable",
                [*part.with_params, *sum_params, *part.where_params],  # as they appear
            )
            for system, chapter, billable, for_system, for_chapter, for_billable in rows:
                _add(facets.systems, system, for_system)
                if chapter is not None:
                    _add(facets.chapters, (system, chapter), for_chapter)
                _add(facets.billable, bool(billable), for_billable)
        return facets

    def _candidates(self, plan: QueryPlan) -> Candidates:
        if not plan.code and not plan.words:
            return Candidates([], 0)
        with _snapshot(self.pool) as conn:
            try:
                return self._query(conn, plan)
            except sqlite3.OperationalError:
                if self.exists(conn):
                    raise
            # Dropped by a promote after the caller resolved the alias (checked only
            # now: one fewer statement for every search).
            index = self._successor(conn)
            return index._query(conn, plan) if index else Candidates([], 0)

    def _successor(self, conn: sqlite3.Connection) -> SQLiteIndex | None:
        """The live version, when a promote dropped this one after a reader resolved it."""
        if self.alias is None:
            return None
        row = conn.execute(
            "SELECT target FROM search_aliases WHERE alias = ?", (self.alias,)
        ).fetchone()
        if row is None or row[0] == self.name:
            return None
        live = SQLiteIndex(self.pool, row[0], self.alias)
        return live if live.exists(conn) else None

    async def candidates(self, plan: QueryPlan) -> Candidates:
        return await run_in_threadpool(self._candidates, plan)

    def _facets(self, plan: QueryPlan) -> Facets:
        if not plan.code and not plan.words:
            return Facets()
        with _snapshot(self.pool) as conn:
            index = self if self.exists(conn) else self._successor(conn)
            return index._tally(conn, plan) if index else Facets()

    async def facets(self, plan: QueryPlan) -> Facets:
        return await run_in_threadpool(self._facets, plan)

    def _get(self, doc_id: str) -> CodeDocument | None:
        with _snapshot(self.pool) as conn:
            if not self.exists(conn):
                return None
            row = conn.execute(f"SELECT * FROM {self._docs} WHERE doc_id = ?", (doc_id,)).fetchone()
        return _document(row) if row else None

    async def get(self, doc_id: str) -> CodeDocument | None:
        return await run_in_threadpool(self._get, doc_id)

    def _count(self) -> int:
        with self.pool.connection() as conn:
            return int(conn.execute(f"SELECT count(*) FROM {self._docs}").fetchone()[0])

    async def count(self) -> int:
        return await run_in_threadpool(self._count)

    def _documents(self) -> list[CodeDocument]:
        with self.pool.connection() as conn:
            rows = conn.execute(f"SELECT * FROM {self._docs} ORDER BY doc_id").fetchall()
        return [_document(r) for r in rows]

    async def documents(self) -> list[CodeDocument]:
        return await run_in_threadpool(self._documents)

    def _listing(self, system: str, offset: int, limit: int) -> tuple[list[CodeDocument], int]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                f"SELECT * FROM {self._docs} WHERE doc_id > ? AND doc_id < ? ORDER BY doc_id"
                " LIMIT ? OFFSET ?", (f"{system}:", f"{system};", limit, offset),
            ).fetchall()
            total = conn.execute(
                f"SELECT count(*) FROM {self._docs} WHERE doc_id > ? AND doc_id < ?",
                (f"{system}:", f"{system};"),
            ).fetchone()[0]
        return [_document(r) for r in rows], int(total)

    async def listing(self, system: str, offset: int, limit: int) -> tuple[list[CodeDocument], int]:
        return await run_in_threadpool(self._listing, system, offset, limit)


class SQLiteCatalog:
    """The embedded search catalogue: one SQLite file holding every index version."""

    def __init__(self, path: Path, alias: str = "codes") -> None:
        if not _ALIAS.fullmatch(alias):
            raise ValueError(f"alias {alias!r} must match {_ALIAS.pattern}")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.pool = _Pool(path)
        self.alias = alias
        self._version_name = re.compile(rf"{re.escape(alias)}_v(\d+)")
        self._current: set[str] = set()  # versions known to have every table
        with self.pool.connection() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS search_aliases (alias TEXT PRIMARY KEY, target TEXT)"
            )
            conn.execute(
                "CREATE TABLE IF NOT EXISTS search_checkpoints (idx TEXT NOT NULL,"
                " consumer TEXT NOT NULL, source TEXT NOT NULL, position INTEGER NOT NULL,"
                " cursor INTEGER NOT NULL, PRIMARY KEY (idx, consumer, source))"
            )

    def _index(self, name: str) -> SQLiteIndex:
        return SQLiteIndex(self.pool, name, self.alias)

    def _number(self, name: str) -> int | None:
        match = self._version_name.fullmatch(name)
        return int(match.group(1)) if match else None

    def _target(self, conn: sqlite3.Connection) -> str | None:
        row = conn.execute(
            "SELECT target FROM search_aliases WHERE alias = ?", (self.alias,)
        ).fetchone()
        return row[0] if row else None

    def _versions(self, conn: sqlite3.Connection) -> dict[str, int]:
        """Every version of this alias in the file, live or not, by name."""
        tables = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE ?",
            (f"{self.alias}_v%_docs",),
        )
        numbers = {t[: -len("_docs")]: self._number(t[: -len("_docs")]) for (t,) in tables}
        return {name: n for name, n in numbers.items() if n is not None}

    def _create_next(self, conn: sqlite3.Connection) -> SQLiteIndex:
        """Create the version numbered after every existing one (in a write transaction)."""
        numbers = list(self._versions(conn).values())
        target = self._target(conn)
        if target is not None and (n := self._number(target)) is not None:
            numbers.append(n)
        index = self._index(f"{self.alias}_v{max(numbers, default=0) + 1}")
        index.create(conn)
        self._current.add(index.name)
        return index

    def _live_index(self) -> SQLiteIndex:
        with self.pool.connection() as conn:
            target = self._target(conn)
            current = target is not None and (
                target in self._current or self._index(target).is_current(conn)
            )
        if target is not None and current:
            self._current.add(target)
            return self._index(target)
        with _immediate(self.pool) as conn:
            target = self._target(conn)
            if target is None:
                # The next free number: a version being built may already hold v1.
                target = self._create_next(conn).name
                conn.execute(
                    "INSERT INTO search_aliases (alias, target) VALUES (?, ?)", (self.alias, target)
                )
            else:
                self._index(target).create(conn)  # built by an older release of this code
                self._current.add(target)
        return self._index(target)

    async def live(self) -> SQLiteIndex:
        # The alias only moves through promote() in this process, or a rebuild command
        # in another one: re-read it so a swap made elsewhere is seen at once.
        return await run_in_threadpool(self._live_index)

    def _create_version(self) -> SQLiteIndex:
        with _immediate(self.pool) as conn:
            return self._create_next(conn)

    async def create_version(self) -> SQLiteIndex:
        return await run_in_threadpool(self._create_version)

    def _promote(self, index: SearchIndex) -> None:
        number = self._number(index.name)
        if number is None:
            raise ValueError(f"{index.name!r} is not a version of {self.alias!r}")
        with _immediate(self.pool) as conn:
            versions = self._versions(conn)
            if index.name not in versions:
                raise ValueError(f"{index.name!r} is not a version of {self.alias!r} here")
            conn.execute(
                "INSERT INTO search_aliases (alias, target) VALUES (?, ?)"
                " ON CONFLICT (alias) DO UPDATE SET target = excluded.target",
                (self.alias, index.name),
            )
            # Older versions go in the same transaction: the old live one and abandoned
            # rebuilds. Newer ones are kept: they may be rebuilds in progress.
            for name, n in versions.items():
                if n < number:
                    self._index(name).drop(conn)
                    conn.execute("DELETE FROM search_checkpoints WHERE idx = ?", (name,))

    async def promote(self, index: SearchIndex) -> None:
        """Point the alias at ``index`` and drop older versions, in one transaction."""
        await run_in_threadpool(self._promote, index)

    async def close(self) -> None:
        self.pool.close()
