"""The outbox: messages recorded with the tracking row of the consumer that wrote them.

A product's mail policy is a consumer of its own events. ``record`` writes the messages
composed from a batch of events and that consumer's checkpoint in ONE transaction, so a
crash either keeps both or neither: no mail is lost, and none is written twice for the
same ``(source, position)``. A deterministic Message-ID per message makes the write
idempotent as well (the outbox keeps one row per Message-ID).

Delivery claims due rows with a lease (``claim``): a worker that dies mid-send leaves
the row to be claimed again once the lease ends, so delivery is at-least-once and a
receiver sees the same Message-ID twice at worst. A delivered message's body is dropped
(the row stays, for its Message-ID and status): a link in it (a one-time token) does not
outlive delivery in the store.

Two stores: SQLite (embedded, ``$DATA_DIR/mail.sqlite``) and PostgreSQL (distributed,
tables ``mail_outbox`` and ``mail_tracking`` in the platform's database).

Longer than 400 lines on purpose: the Outbox contract and its two stores, read side by
side, method for method.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

from services.shared.mail.message import MailMessage, render
from services.shared.search.model import Checkpoint
from services.shared.threads import run_in_threadpool

Status = Literal["pending", "sent", "failed"]


@dataclass(frozen=True)
class Pending:
    """A claimed message: what delivery sends, and how often it was tried before."""

    id: int
    message_id: str
    sender: str
    recipients: list[str]
    raw: bytes
    attempts: int


@dataclass(frozen=True)
class Stored:
    """One row as an operator (or a test) sees it."""

    id: int
    message_id: str
    recipients: list[str]
    status: Status
    attempts: int
    last_error: str | None
    source: str | None
    position: int | None
    body_kept: bool  # False once delivered


@dataclass(frozen=True)
class Composed:
    """A message rendered to bytes, ready for the outbox."""

    message_id: str
    recipients: list[str]
    raw: bytes


class Outbox(Protocol):
    """Where messages wait for delivery (see the module docstring)."""

    sender: str

    async def open(self) -> None:
        """Create the tables when missing."""

    async def checkpoint(self, consumer: str, source: str) -> Checkpoint | None: ...

    async def record(self, messages: Sequence[MailMessage], checkpoint: Checkpoint) -> int:
        """Store ``messages`` and ``checkpoint`` in one transaction; how many were new.

        Nothing is written when the stored checkpoint is already at or past
        ``checkpoint.position`` (a redelivered batch)."""

    async def claim(self, now: datetime, limit: int, lease: timedelta) -> list[Pending]:
        """Due pending messages, each held for ``lease`` against other workers."""

    async def delivered(self, id: int, now: datetime) -> None: ...

    async def deferred(self, id: int, next_attempt: datetime, error: str) -> None:
        """Count a failed try and set when to try again."""

    async def failed(self, id: int, error: str) -> None:
        """Give up (a permanent refusal): the row stays, marked failed, with the error."""

    async def messages(self) -> list[Stored]: ...

    async def depth(self) -> int:
        """Messages still to deliver (pending, including those waiting for a retry)."""

    async def wait_for_work(self, timeout: float) -> None:
        """Return when a message was recorded in this process, or after ``timeout``."""

    async def close(self) -> None: ...


class _Signal:
    """Wakes the delivery worker of this process as soon as a message is recorded."""

    def __init__(self) -> None:
        self._event: asyncio.Event | None = None

    def set(self) -> None:
        if self._event is not None:
            self._event.set()

    async def wait(self, timeout: float) -> None:
        if self._event is None:
            self._event = asyncio.Event()
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            pass
        self._event.clear()


def compose(messages: Sequence[MailMessage], sender: str, now: datetime) -> list[Composed]:
    composed = []
    for message in messages:
        mime = render(message, sender, now)
        composed.append(Composed(str(mime["Message-ID"]), message.recipients, bytes(mime)))
    return composed


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class SQLiteOutbox:
    """The embedded outbox: one SQLite file, one writer at a time (BEGIN IMMEDIATE)."""

    def __init__(self, path: Path, sender: str) -> None:
        self.path = path
        self.sender = sender
        self._signal = _Signal()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        return conn

    def _create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as conn:
            conn.executescript(
                "CREATE TABLE IF NOT EXISTS mail_outbox ("
                " id INTEGER PRIMARY KEY AUTOINCREMENT,"
                " message_id TEXT NOT NULL UNIQUE, source TEXT, position INTEGER,"
                " sender TEXT NOT NULL, recipients TEXT NOT NULL, raw BLOB NOT NULL,"
                " status TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,"
                " next_attempt_at REAL NOT NULL, last_error TEXT,"
                " created_at REAL NOT NULL, sent_at REAL);"
                "CREATE INDEX IF NOT EXISTS mail_outbox_due"
                " ON mail_outbox (status, next_attempt_at);"
                "CREATE TABLE IF NOT EXISTS mail_tracking ("
                " consumer TEXT NOT NULL, source TEXT NOT NULL, position INTEGER NOT NULL,"
                " cursor INTEGER NOT NULL, PRIMARY KEY (consumer, source));"
            )

    async def open(self) -> None:
        await run_in_threadpool(self._create)

    def _checkpoint(self, consumer: str, source: str) -> Checkpoint | None:
        with closing(self._connect()) as conn:
            row = conn.execute("SELECT position, cursor FROM mail_tracking"
                               " WHERE consumer = ? AND source = ?", (consumer, source)).fetchone()
        return Checkpoint(consumer, source, row[0], row[1]) if row else None

    async def checkpoint(self, consumer: str, source: str) -> Checkpoint | None:
        return await run_in_threadpool(self._checkpoint, consumer, source)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at once (BEGIN IMMEDIATE): no lost updates."""
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()

    def _record(self, composed: list[Composed], checkpoint: Checkpoint, now: datetime) -> int:
        with self._transaction() as conn:
            row = conn.execute("SELECT position FROM mail_tracking WHERE consumer = ?"
                               " AND source = ?", (checkpoint.consumer, checkpoint.source)
                               ).fetchone()
            if row and row[0] >= checkpoint.position:
                return 0
            new = 0
            stamp = now.timestamp()
            for message in composed:
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO mail_outbox (message_id, source, position, sender,"
                    " recipients, raw, next_attempt_at, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (message.message_id, checkpoint.source, checkpoint.position, self.sender,
                     json.dumps(message.recipients), message.raw, stamp, stamp),
                )
                new += cursor.rowcount
            conn.execute(
                "INSERT INTO mail_tracking (consumer, source, position, cursor)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (consumer, source)"
                " DO UPDATE SET position = excluded.position, cursor = excluded.cursor",
                (checkpoint.consumer, checkpoint.source, checkpoint.position, checkpoint.cursor),
            )
            return new

    async def record(self, messages: Sequence[MailMessage], checkpoint: Checkpoint) -> int:
        now = datetime.now(UTC)
        composed = compose(messages, self.sender, now)
        new: int = await run_in_threadpool(self._record, composed, checkpoint, now)
        if new:
            self._signal.set()
        return new

    def _claim(self, now: datetime, limit: int, lease: timedelta) -> list[Pending]:
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT id, message_id, sender, recipients, raw, attempts FROM mail_outbox"
                " WHERE status = 'pending' AND next_attempt_at <= ?"
                " ORDER BY next_attempt_at, id LIMIT ?", (now.timestamp(), limit)).fetchall()
            conn.executemany("UPDATE mail_outbox SET next_attempt_at = ? WHERE id = ?",
                             [((now + lease).timestamp(), row[0]) for row in rows])
        return [Pending(r[0], r[1], r[2], json.loads(r[3]), bytes(r[4]), r[5]) for r in rows]

    async def claim(self, now: datetime, limit: int, lease: timedelta) -> list[Pending]:
        return await run_in_threadpool(self._claim, now, limit, lease)

    def _execute(self, sql: str, params: tuple[Any, ...]) -> None:
        with closing(self._connect()) as conn:
            conn.execute(sql, params)

    async def delivered(self, id: int, now: datetime) -> None:
        await run_in_threadpool(self._execute, "UPDATE mail_outbox SET status = 'sent',"
                                " sent_at = ?, attempts = attempts + 1, raw = x'' WHERE id = ?",
                                (now.timestamp(), id))

    async def deferred(self, id: int, next_attempt: datetime, error: str) -> None:
        await run_in_threadpool(self._execute, "UPDATE mail_outbox SET attempts = attempts + 1,"
                                " next_attempt_at = ?, last_error = ? WHERE id = ?",
                                (next_attempt.timestamp(), error, id))

    async def failed(self, id: int, error: str) -> None:
        await run_in_threadpool(self._execute, "UPDATE mail_outbox SET status = 'failed',"
                                " attempts = attempts + 1, last_error = ? WHERE id = ?",
                                (error, id))

    def _messages(self) -> list[Stored]:
        with closing(self._connect()) as conn:
            rows = conn.execute("SELECT id, message_id, recipients, status, attempts,"
                                " last_error, source, position, length(raw) > 0"
                                " FROM mail_outbox ORDER BY id").fetchall()
        return [Stored(r[0], r[1], json.loads(r[2]), r[3], r[4], r[5], r[6], r[7], bool(r[8]))
                for r in rows]

    async def messages(self) -> list[Stored]:
        return await run_in_threadpool(self._messages)

    def _depth(self) -> int:
        with closing(self._connect()) as conn:
            row = conn.execute("SELECT count(*) FROM mail_outbox WHERE status = 'pending'"
                               ).fetchone()
        return int(row[0])

    async def depth(self) -> int:
        return await run_in_threadpool(self._depth)

    async def wait_for_work(self, timeout: float) -> None:
        await self._signal.wait(timeout)

    async def close(self) -> None:
        return None


class PostgresOutbox:
    """The distributed outbox: PostgreSQL through asyncpg; workers claim with SKIP LOCKED."""

    def __init__(self, dsn: str, sender: str) -> None:
        self.dsn = dsn
        self.sender = sender
        self._pool: Any = None
        self._signal = _Signal()

    async def _connection(self) -> Any:
        if self._pool is None:
            import asyncpg

            self._pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=4)
        return self._pool

    async def open(self) -> None:
        pool = await self._connection()
        async with pool.acquire() as conn, conn.transaction():
            # Processes starting together would race on CREATE TABLE IF NOT EXISTS.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('medcode.mail_outbox'))")
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS mail_outbox ("
                " id BIGSERIAL PRIMARY KEY,"
                " message_id TEXT NOT NULL UNIQUE, source TEXT, position BIGINT,"
                " sender TEXT NOT NULL, recipients JSONB NOT NULL, raw BYTEA NOT NULL,"
                " status TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,"
                " next_attempt_at TIMESTAMPTZ NOT NULL, last_error TEXT,"
                " created_at TIMESTAMPTZ NOT NULL, sent_at TIMESTAMPTZ);"
                "CREATE INDEX IF NOT EXISTS mail_outbox_due"
                " ON mail_outbox (status, next_attempt_at);"
                "CREATE TABLE IF NOT EXISTS mail_tracking ("
                " consumer TEXT NOT NULL, source TEXT NOT NULL, position BIGINT NOT NULL,"
                " cursor BIGINT NOT NULL, PRIMARY KEY (consumer, source));"
            )

    async def checkpoint(self, consumer: str, source: str) -> Checkpoint | None:
        pool = await self._connection()
        row = await pool.fetchrow("SELECT position, cursor FROM mail_tracking"
                                  " WHERE consumer = $1 AND source = $2", consumer, source)
        return Checkpoint(consumer, source, row["position"], row["cursor"]) if row else None

    async def record(self, messages: Sequence[MailMessage], checkpoint: Checkpoint) -> int:
        now = datetime.now(UTC)
        composed = compose(messages, self.sender, now)
        pool = await self._connection()
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO mail_tracking (consumer, source, position, cursor)"
                " VALUES ($1, $2, 0, 0) ON CONFLICT DO NOTHING",
                checkpoint.consumer, checkpoint.source)
            stored = await conn.fetchval(
                "SELECT position FROM mail_tracking WHERE consumer = $1 AND source = $2"
                " FOR UPDATE", checkpoint.consumer, checkpoint.source)
            if stored >= checkpoint.position:
                return 0
            new = 0
            for message in composed:
                status = await conn.execute(
                    "INSERT INTO mail_outbox (message_id, source, position, sender, recipients,"
                    " raw, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5::jsonb, $6,"
                    " $7, $7) ON CONFLICT (message_id) DO NOTHING",
                    message.message_id, checkpoint.source, checkpoint.position, self.sender,
                    json.dumps(message.recipients), message.raw, now)
                new += int(status.rsplit(" ", 1)[-1])
            await conn.execute(
                "UPDATE mail_tracking SET position = $3, cursor = $4"
                " WHERE consumer = $1 AND source = $2",
                checkpoint.consumer, checkpoint.source, checkpoint.position, checkpoint.cursor)
        if new:
            self._signal.set()
        return new

    async def claim(self, now: datetime, limit: int, lease: timedelta) -> list[Pending]:
        pool = await self._connection()
        rows = await pool.fetch(
            "UPDATE mail_outbox SET next_attempt_at = $3 WHERE id IN ("
            " SELECT id FROM mail_outbox WHERE status = 'pending' AND next_attempt_at <= $1"
            " ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)"
            " RETURNING id, message_id, sender, recipients, raw, attempts",
            now, limit, now + lease)
        found = [Pending(r["id"], r["message_id"], r["sender"], json.loads(r["recipients"]),
                         bytes(r["raw"]), r["attempts"]) for r in rows]
        return sorted(found, key=lambda p: p.id)

    async def delivered(self, id: int, now: datetime) -> None:
        pool = await self._connection()
        await pool.execute("UPDATE mail_outbox SET status = 'sent', sent_at = $2,"
                           " attempts = attempts + 1, raw = ''::bytea WHERE id = $1", id, now)

    async def deferred(self, id: int, next_attempt: datetime, error: str) -> None:
        pool = await self._connection()
        await pool.execute("UPDATE mail_outbox SET attempts = attempts + 1,"
                           " next_attempt_at = $2, last_error = $3 WHERE id = $1",
                           id, next_attempt, error)

    async def failed(self, id: int, error: str) -> None:
        pool = await self._connection()
        await pool.execute("UPDATE mail_outbox SET status = 'failed', attempts = attempts + 1,"
                           " last_error = $2 WHERE id = $1", id, error)

    async def messages(self) -> list[Stored]:
        pool = await self._connection()
        rows = await pool.fetch("SELECT id, message_id, recipients, status, attempts,"
                                " last_error, source, position, length(raw) > 0 AS kept"
                                " FROM mail_outbox ORDER BY id")
        return [Stored(r["id"], r["message_id"], json.loads(r["recipients"]), r["status"],
                       r["attempts"], r["last_error"], r["source"], r["position"], r["kept"])
                for r in rows]

    async def depth(self) -> int:
        pool = await self._connection()
        return int(await pool.fetchval(
            "SELECT count(*) FROM mail_outbox WHERE status = 'pending'"))

    async def wait_for_work(self, timeout: float) -> None:
        await self._signal.wait(timeout)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
