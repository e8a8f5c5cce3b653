"""Crypto-shredding: personal fields sealed with a key per viewer, kept where it can be
forgotten.

The event log is append-only, so an email written into it in clear could never be
erased. Instead the application seals each personal field (email, password hash) with
AES-256-GCM under the viewer's own key before the aggregate records it, and keeps the
keys in a small mutable table beside the store (``viewer_keys``). Deleting an account
deletes its key: every sealed field in the log, in snapshots and in backups of the log
becomes unreadable at once. The field name and the viewer id are bound in as associated
data, so a sealed value cannot be moved to another field or another viewer.
"""

from __future__ import annotations

import base64
import os
import sqlite3
from collections import OrderedDict
from contextlib import closing
from pathlib import Path
from threading import Lock
from typing import Any, Protocol
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class KeyStore(Protocol):
    def create(self, viewer_id: UUID) -> bytes:
        """The viewer's key, made on first use (idempotent, safe under concurrency)."""

    def get(self, viewer_id: UUID) -> bytes | None:
        """None once destroyed (or never made)."""

    def destroy(self, viewer_id: UUID) -> None: ...

    def close(self) -> None: ...


class SQLiteKeys:
    """Embedded: a table in its own SQLite file, so deleting a row really drops it
    (``secure_delete`` overwrites freed pages, and the file holds nothing else)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS viewer_keys"
                         " (viewer_id TEXT PRIMARY KEY, key BLOB NOT NULL)")

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA secure_delete = ON")
        return conn

    def create(self, viewer_id: UUID) -> bytes:
        with closing(self._connect()) as conn:
            conn.execute("INSERT OR IGNORE INTO viewer_keys VALUES (?, ?)",
                         (str(viewer_id), AESGCM.generate_key(bit_length=256)))
            row = conn.execute("SELECT key FROM viewer_keys WHERE viewer_id = ?",
                               (str(viewer_id),)).fetchone()
        return bytes(row[0])

    def get(self, viewer_id: UUID) -> bytes | None:
        with closing(self._connect()) as conn:
            row = conn.execute("SELECT key FROM viewer_keys WHERE viewer_id = ?",
                               (str(viewer_id),)).fetchone()
        return bytes(row[0]) if row else None

    def destroy(self, viewer_id: UUID) -> None:
        with closing(self._connect()) as conn:
            conn.execute("DELETE FROM viewer_keys WHERE viewer_id = ?", (str(viewer_id),))

    def close(self) -> None:
        return None


class PostgresKeys:
    """Distributed: a table ``accounts_viewer_keys`` in the platform's database."""

    def __init__(self, conninfo: str) -> None:
        from psycopg_pool import ConnectionPool

        self._pool: Any = ConnectionPool(conninfo, min_size=1, max_size=4, open=True)
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('medcode.viewer_keys'))")
            conn.execute("CREATE TABLE IF NOT EXISTS accounts_viewer_keys"
                         " (viewer_id UUID PRIMARY KEY, key BYTEA NOT NULL)")

    def create(self, viewer_id: UUID) -> bytes:
        with self._pool.connection() as conn:
            conn.execute("INSERT INTO accounts_viewer_keys VALUES (%s, %s)"
                         " ON CONFLICT DO NOTHING",
                         (viewer_id, AESGCM.generate_key(bit_length=256)))
            row = conn.execute("SELECT key FROM accounts_viewer_keys WHERE viewer_id = %s",
                               (viewer_id,)).fetchone()
        return bytes(row[0])

    def get(self, viewer_id: UUID) -> bytes | None:
        with self._pool.connection() as conn:
            row = conn.execute("SELECT key FROM accounts_viewer_keys WHERE viewer_id = %s",
                               (viewer_id,)).fetchone()
        return bytes(row[0]) if row else None

    def destroy(self, viewer_id: UUID) -> None:
        with self._pool.connection() as conn:
            conn.execute("DELETE FROM accounts_viewer_keys WHERE viewer_id = %s", (viewer_id,))

    def close(self) -> None:
        self._pool.close()


class PersonalData:
    """Seals and opens a viewer's personal fields; a small cache saves key look-ups."""

    def __init__(self, keys: KeyStore, cache_size: int = 4096) -> None:
        self.keys = keys
        self._cache: OrderedDict[UUID, bytes] = OrderedDict()
        self._cache_size = cache_size
        self._lock = Lock()

    def _key(self, viewer_id: UUID, create: bool) -> bytes | None:
        with self._lock:
            key = self._cache.get(viewer_id)
            if key is not None:
                self._cache.move_to_end(viewer_id)
                return key
        key = self.keys.create(viewer_id) if create else self.keys.get(viewer_id)
        if key is not None:
            with self._lock:
                self._cache[viewer_id] = key
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return key

    def seal(self, viewer_id: UUID, field: str, value: str) -> str:
        key = self._key(viewer_id, create=True)
        assert key is not None
        nonce = os.urandom(12)
        sealed = AESGCM(key).encrypt(nonce, value.encode(), f"{viewer_id}:{field}".encode())
        return base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, viewer_id: UUID, field: str, sealed: str | None) -> str | None:
        """The clear value; None when there is none or the key was destroyed."""
        if sealed is None:
            return None
        key = self._key(viewer_id, create=False)
        if key is None:
            return None
        raw = base64.urlsafe_b64decode(sealed.encode())
        try:
            return AESGCM(key).decrypt(raw[:12], raw[12:],
                                       f"{viewer_id}:{field}".encode()).decode()
        except InvalidTag:
            return None

    def forget(self, viewer_id: UUID) -> None:
        """Destroy the key: everything sealed with it is unreadable from now on."""
        self.keys.destroy(viewer_id)
        with self._lock:
            self._cache.pop(viewer_id, None)

    def close(self) -> None:
        self.keys.close()


def key_store_for(env: dict[str, str]) -> KeyStore:
    """The key store beside the event store an Application's ``env`` names."""
    if env.get("PERSISTENCE_MODULE", "").endswith("sqlite"):
        events = Path(env["SQLITE_DBNAME"])
        return SQLiteKeys(events.with_name(f"{events.stem}-keys.sqlite"))
    from psycopg.conninfo import make_conninfo

    return PostgresKeys(make_conninfo(
        dbname=env.get("POSTGRES_DBNAME", "medcode"), host=env.get("POSTGRES_HOST", "127.0.0.1"),
        port=env.get("POSTGRES_PORT", "5432"), user=env.get("POSTGRES_USER", "postgres"),
        password=env.get("POSTGRES_PASSWORD") or None,
    ))
