"""The embedded code-search index: SQLite FTS5 in one file, versions behind an alias row.

Each index version is a pair of tables (documents + FTS5). The alias row names the live
version; promoting a rebuilt version is one transaction, so readers see either the old
index or the new one, never a mix. Writes record the consumer's checkpoint in the same
transaction as the documents.
"""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from starlette.concurrency import run_in_threadpool

from services.shared.search.model import (
    Candidates,
    Checkpoint,
    CodeDocument,
    IndexChange,
    QueryPlan,
)

# porter: "fractures" finds "fracture"; remove_diacritics: "Ménière" finds "meniere".
_TOKENIZER = "porter unicode61 remove_diacritics 2"
_COLUMNS = "doc_id, system, code, compact, title, billable, kind, chapter, parent, terms, version"


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


def _fts_query(plan: QueryPlan) -> str:
    if not plan.words:
        return ""
    quoted = [f'"{w}"' for w in plan.words]
    quoted[-1] += "*"
    return (" AND " if plan.match_all else " OR ").join(quoted)


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


class SQLiteIndex:
    def __init__(self, pool: _Pool, name: str) -> None:
        self.pool = pool
        self.name = name
        self._docs = f"{name}_docs"
        self._fts = f"{name}_fts"

    def create(self, conn: sqlite3.Connection) -> None:
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
            f"title, terms, tokenize='{_TOKENIZER}', prefix='2 3 4')"
        )

    def drop(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"DROP TABLE IF EXISTS {self._docs}")
        conn.execute(f"DROP TABLE IF EXISTS {self._fts}")

    # -- writes ---------------------------------------------------------------------

    def _write(self, change: IndexChange, checkpoint: Checkpoint) -> None:
        with self.pool.write_lock, self.pool.connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for doc in change.upserts:
                    self._upsert(conn, doc)
                for doc_id in change.deletions:
                    self._delete(conn, doc_id)
                conn.execute(
                    "INSERT INTO search_checkpoints (idx, consumer, source, position, cursor)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (idx, consumer, source) DO UPDATE SET"
                    " position = excluded.position, cursor = excluded.cursor",
                    (self.name, checkpoint.consumer, checkpoint.source, checkpoint.position,
                     checkpoint.cursor),
                )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _upsert(self, conn: sqlite3.Connection, doc: CodeDocument) -> None:
        terms = " | ".join(doc.terms)
        row = conn.execute(
            f"SELECT rowid FROM {self._docs} WHERE doc_id = ?", (doc.doc_id,)
        ).fetchone()
        values = (doc.doc_id, doc.system, doc.code, doc.compact, doc.title, int(doc.billable),
                  doc.kind, doc.chapter, doc.parent, json.dumps(list(doc.terms)), doc.version)
        if row is None:
            cur = conn.execute(
                f"INSERT INTO {self._docs} ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)", values
            )
            conn.execute(
                f"INSERT INTO {self._fts} (rowid, title, terms) VALUES (?, ?, ?)",
                (cur.lastrowid, doc.title, terms),
            )
        else:
            conn.execute(
                f"UPDATE {self._docs} SET system=?, code=?, compact=?, title=?, billable=?,"
                " kind=?, chapter=?, parent=?, terms=?, version=? WHERE rowid=?",
                (*values[1:], row[0]),
            )
            conn.execute(
                f"UPDATE {self._fts} SET title=?, terms=? WHERE rowid=?", (doc.title, terms, row[0])
            )

    def _delete(self, conn: sqlite3.Connection, doc_id: str) -> None:
        row = conn.execute(f"SELECT rowid FROM {self._docs} WHERE doc_id = ?", (doc_id,)).fetchone()
        if row is not None:
            conn.execute(f"DELETE FROM {self._docs} WHERE rowid = ?", (row[0],))
            conn.execute(f"DELETE FROM {self._fts} WHERE rowid = ?", (row[0],))

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

    def _filters(self, plan: QueryPlan) -> tuple[str, list[object]]:
        clauses: list[str] = []
        params: list[object] = []
        if plan.systems:
            clauses.append(f"d.system IN ({','.join('?' * len(plan.systems))})")
            params.extend(plan.systems)
        if plan.billable_only:
            clauses.append("d.billable = 1")
        if plan.chapter:
            clauses.append("d.chapter = ?")
            params.append(plan.chapter)
        return "".join(f" AND {c}" for c in clauses), params

    def _candidates(self, plan: QueryPlan) -> Candidates:
        filters, params = self._filters(plan)
        match = _fts_query(plan)
        found: dict[str, CodeDocument] = {}
        matching: list[str] = []
        count_params: list[object] = []
        with self.pool.connection() as conn:
            if plan.code:
                code_range = (plan.code, plan.code + "\uffff")
                rows = conn.execute(
                    f"SELECT d.* FROM {self._docs} d WHERE d.compact >= ? AND d.compact < ?"
                    f"{filters} ORDER BY d.compact != ?, length(d.compact), d.compact LIMIT ?",
                    (*code_range, *params, plan.code, plan.window),
                ).fetchall()
                for row in rows:
                    found.setdefault(row[0], _document(row))
                matching.append("(d.compact >= ? AND d.compact < ?)")
                count_params.extend(code_range)
            if match:
                rows = conn.execute(
                    f"SELECT d.* FROM {self._fts} f JOIN {self._docs} d ON d.rowid = f.rowid"
                    f" WHERE {self._fts} MATCH ?{filters}"
                    f" ORDER BY bm25({self._fts}, 2.0, 1.0) LIMIT ?",
                    (match, *params, plan.window),
                ).fetchall()
                for row in rows:
                    found.setdefault(row[0], _document(row))
                matching.append(f"d.rowid IN (SELECT rowid FROM {self._fts} WHERE {self._fts} MATCH ?)")
                count_params.append(match)
            if not matching:
                return Candidates([], 0)
            total = conn.execute(
                f"SELECT count(*) FROM {self._docs} d WHERE ({' OR '.join(matching)}){filters}",
                (*count_params, *params),
            ).fetchone()[0]
        return Candidates(list(found.values())[: plan.window], total)

    async def candidates(self, plan: QueryPlan) -> Candidates:
        return await run_in_threadpool(self._candidates, plan)

    def _get(self, doc_id: str) -> CodeDocument | None:
        with self.pool.connection() as conn:
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


class SQLiteCatalog:
    """The embedded search catalogue: one SQLite file holding every index version."""

    def __init__(self, path: Path, alias: str = "codes") -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.pool = _Pool(path)
        self.alias = alias
        self._live: SQLiteIndex | None = None
        with self.pool.connection() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS search_aliases (alias TEXT PRIMARY KEY, target TEXT)"
            )
            conn.execute(
                "CREATE TABLE IF NOT EXISTS search_checkpoints (idx TEXT NOT NULL,"
                " consumer TEXT NOT NULL, source TEXT NOT NULL, position INTEGER NOT NULL,"
                " cursor INTEGER NOT NULL, PRIMARY KEY (idx, consumer, source))"
            )

    def _target(self, conn: sqlite3.Connection) -> str | None:
        row = conn.execute(
            "SELECT target FROM search_aliases WHERE alias = ?", (self.alias,)
        ).fetchone()
        return row[0] if row else None

    def _live_index(self) -> SQLiteIndex:
        with self.pool.connection() as conn:
            target = self._target(conn)
        if target is not None:
            return SQLiteIndex(self.pool, target)
        with self.pool.write_lock, self.pool.connection() as conn:
            target = self._target(conn)
            if target is None:
                target = f"{self.alias}_v1"
                index = SQLiteIndex(self.pool, target)
                conn.execute("BEGIN IMMEDIATE")
                index.create(conn)
                conn.execute(
                    "INSERT INTO search_aliases (alias, target) VALUES (?, ?)", (self.alias, target)
                )
                conn.execute("COMMIT")
            return SQLiteIndex(self.pool, target)

    async def live(self) -> SQLiteIndex:
        # The alias only moves through promote() in this process, or a rebuild command
        # in another one: re-read it so a swap made elsewhere is seen at once.
        return await run_in_threadpool(self._live_index)

    def _create_version(self) -> SQLiteIndex:
        with self.pool.write_lock, self.pool.connection() as conn:
            names = [
                r[0] for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type='table' AND name LIKE ?",
                    (f"{self.alias}_v%_docs",),
                )
            ]
            numbers = [int(n[len(self.alias) + 2 : -len("_docs")]) for n in names]
            current = self._target(conn)
            if current:
                numbers.append(int(current[len(self.alias) + 2 :]))
            index = SQLiteIndex(self.pool, f"{self.alias}_v{max(numbers, default=0) + 1}")
            index.create(conn)
            return index

    async def create_version(self) -> SQLiteIndex:
        return await run_in_threadpool(self._create_version)

    def _promote(self, index: SQLiteIndex) -> None:
        with self.pool.write_lock, self.pool.connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            old = self._target(conn)
            conn.execute(
                "INSERT INTO search_aliases (alias, target) VALUES (?, ?)"
                " ON CONFLICT (alias) DO UPDATE SET target = excluded.target",
                (self.alias, index.name),
            )
            conn.execute("COMMIT")
            if old and old != index.name:
                conn.execute("BEGIN IMMEDIATE")
                SQLiteIndex(self.pool, old).drop(conn)
                conn.execute("DELETE FROM search_checkpoints WHERE idx = ?", (old,))
                conn.execute("COMMIT")

    async def promote(self, index: SQLiteIndex) -> None:  # type: ignore[override]
        await run_in_threadpool(self._promote, index)

    async def close(self) -> None:
        self.pool.close()
