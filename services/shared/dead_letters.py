"""Events a consumer set aside: the envelope, the error, and how often it was tried.

Only a projection that declares skipping safe (``skip_safe = True``) ever dead-letters;
the record is how an operator finds what was skipped (``medcode events dead-letters``),
fixes the cause and rebuilds the projection. The store is a table next to the event
store: a SQLite file when embedded, a PostgreSQL table when distributed. Calls are
synchronous; async code runs them in a thread.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from services.shared.envelope import Envelope


@dataclass(frozen=True)
class DeadLetter:
    consumer: str
    source: str
    position: int
    event_type: str
    error: str
    attempts: int
    recorded_at: datetime
    envelope: Envelope

    def as_dict(self) -> dict[str, Any]:
        return {
            "consumer": self.consumer,
            "source": self.source,
            "position": self.position,
            "type": self.event_type,
            "error": self.error,
            "attempts": self.attempts,
            "recorded_at": self.recorded_at.isoformat(),
            "envelope": self.envelope.to_dict(),
        }


class DeadLetters(Protocol):
    def record(self, letter: DeadLetter) -> None:
        """Keep ``letter``; recording the same (consumer, source, position) again updates it."""

    def list(self, consumer: str | None = None) -> list[DeadLetter]:
        """Every dead letter (of one consumer), in the order consumers met them."""

    def close(self) -> None: ...


_COLUMNS = "consumer, source, position, event_type, error, attempts, recorded_at, envelope"


def _letter(row: tuple[Any, ...]) -> DeadLetter:
    consumer, source, position, event_type, error, attempts, recorded_at, envelope = row
    when = recorded_at if isinstance(recorded_at, datetime) else datetime.fromisoformat(
        recorded_at)
    return DeadLetter(consumer, source, int(position), event_type, error, int(attempts),
                      when, Envelope.from_json(envelope))


def _values(letter: DeadLetter) -> tuple[Any, ...]:
    return (letter.consumer, letter.source, letter.position, letter.event_type, letter.error,
            letter.attempts, letter.recorded_at.isoformat(),
            json.dumps(letter.envelope.to_dict()))


class SQLiteDeadLetters:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False,
                                   isolation_level=None)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS dead_letters (consumer TEXT, source TEXT,"
            " position INTEGER, event_type TEXT, error TEXT, attempts INTEGER,"
            " recorded_at TEXT, envelope TEXT, PRIMARY KEY (consumer, source, position))"
        )

    def record(self, letter: DeadLetter) -> None:
        self._db.execute(
            f"INSERT OR REPLACE INTO dead_letters ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)",  # noqa: S608
            _values(letter),
        )

    def list(self, consumer: str | None = None) -> list[DeadLetter]:
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM dead_letters WHERE ? IS NULL OR consumer = ?"  # noqa: S608
            " ORDER BY recorded_at, position",
            (consumer, consumer),
        ).fetchall()
        return [_letter(row) for row in rows]

    def close(self) -> None:
        self._db.close()


class PostgresDeadLetters:
    def __init__(self, dsn: str) -> None:
        import psycopg

        self._dsn = dsn
        self._psycopg = psycopg
        with self._connect() as conn, conn.transaction():
            # Processes starting together would race on CREATE TABLE IF NOT EXISTS
            # (the loser fails on a duplicate key in pg_type, and its process exits).
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('medcode.dead_letters'))")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS dead_letters (consumer text, source text,"
                " position bigint, event_type text, error text, attempts integer,"
                " recorded_at timestamptz, envelope text,"
                " PRIMARY KEY (consumer, source, position))"
            )

    def _connect(self) -> Any:
        return self._psycopg.connect(self._dsn, autocommit=True, connect_timeout=10)

    def record(self, letter: DeadLetter) -> None:
        with self._connect() as conn:
            conn.execute(
                f"INSERT INTO dead_letters ({_COLUMNS}) VALUES (%s,%s,%s,%s,%s,%s,%s,%s)"  # noqa: S608
                " ON CONFLICT (consumer, source, position) DO UPDATE SET error ="
                " EXCLUDED.error, attempts = EXCLUDED.attempts,"
                " recorded_at = EXCLUDED.recorded_at",
                _values(letter),
            )

    def list(self, consumer: str | None = None) -> list[DeadLetter]:
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM dead_letters"  # noqa: S608
                " WHERE %s::text IS NULL OR consumer = %s ORDER BY recorded_at, position",
                (consumer, consumer),
            ).fetchall()
        return [_letter(tuple(row)) for row in rows]

    def close(self) -> None:
        pass


def now() -> datetime:
    return datetime.now(UTC)
