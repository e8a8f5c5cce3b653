"""A test-only projection that counts every event it applies, so a duplicate or a loss
shows: ``counted(source, position, applied)`` must end with ``applied = 1`` for every
public position in the store and no other row.

Like every real projection it writes its rows and its checkpoint in one transaction
(SQLite file when embedded, PostgreSQL when distributed), with fault points in the
middle of a batch and between the rows and the checkpoint. ``atomic=False`` commits the
rows before the checkpoint instead, the bug the fault suite must be able to catch.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool

from services.shared import faults
from services.shared.bus import Delivery
from services.shared.consumer import Consumer
from services.shared.product import Infrastructure, Product, Running
from services.shared.search.model import Checkpoint
from services.shared.settings import Settings

NAME = "counting"
SOURCE = "lookup"


class CountingProjection:
    name = NAME
    skip_safe = False  # a count with a hole in it would be a wrong answer

    def __init__(self, settings: Settings, *, atomic: bool = True) -> None:
        self.settings = settings
        self.atomic = atomic
        self.postgres = settings.mode == "distributed"
        self.mark = "%s" if self.postgres else "?"
        with self._transaction() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS counted (source TEXT, position BIGINT,"
                        " applied INTEGER NOT NULL, PRIMARY KEY (source, position))")
            cur.execute("CREATE TABLE IF NOT EXISTS counted_checkpoints (consumer TEXT,"
                        " source TEXT, position BIGINT, cursor BIGINT,"
                        " PRIMARY KEY (consumer, source))")

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        if self.postgres:
            import psycopg

            with psycopg.connect(self.settings.postgres_dsn()) as conn, conn.cursor() as cur:
                yield cur  # commits when the block ends without an error
            return
        path = Path(self.settings.data_dir) / "counting.sqlite"
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30)
        try:
            with conn:
                yield conn.cursor()
        finally:
            conn.close()

    def _checkpoint(self, source: str) -> Checkpoint | None:
        with self._transaction() as cur:
            cur.execute(f"SELECT position, cursor FROM counted_checkpoints WHERE consumer ="
                        f" {self.mark} AND source = {self.mark}", (NAME, source))
            row = cur.fetchone()
        return Checkpoint(NAME, source, int(row[0]), int(row[1])) if row else None

    async def checkpoint(self, source: str) -> Checkpoint | None:
        return await run_in_threadpool(self._checkpoint, source)

    def _count(self, cur: Any, source: str, deliveries: list[Delivery]) -> None:
        m = self.mark
        for i, delivery in enumerate(deliveries):
            cur.execute(
                f"INSERT INTO counted (source, position, applied) VALUES ({m}, {m}, 1)"
                " ON CONFLICT (source, position) DO UPDATE SET applied = counted.applied + 1",
                (source, delivery.envelope.position))
            if i == len(deliveries) // 2:
                faults.point("projection.mid_batch")

    def _store_checkpoint(self, cur: Any, source: str, last: Delivery) -> None:
        m = self.mark
        cur.execute(
            f"INSERT INTO counted_checkpoints VALUES ({m}, {m}, {m}, {m}) ON CONFLICT"
            " (consumer, source) DO UPDATE SET position = excluded.position,"
            " cursor = excluded.cursor", (NAME, source, last.envelope.position, last.cursor))

    def _apply(self, source: str, deliveries: list[Delivery]) -> None:
        if self.atomic:
            with self._transaction() as cur:
                self._count(cur, source, deliveries)
                faults.point("projection.after_write")
                self._store_checkpoint(cur, source, deliveries[-1])
            return
        with self._transaction() as cur:  # the bug: two transactions
            self._count(cur, source, deliveries)
        faults.point("projection.after_write")
        with self._transaction() as cur:
            self._store_checkpoint(cur, source, deliveries[-1])

    async def apply(self, source: str, deliveries: list[Delivery]) -> None:
        await run_in_threadpool(self._apply, source, deliveries)

    def counts(self, source: str = SOURCE) -> dict[int, int]:
        with self._transaction() as cur:
            cur.execute(f"SELECT position, applied FROM counted WHERE source = {self.mark}",
                        (source,))
            return {int(p): int(n) for p, n in cur.fetchall()}


async def _start(infra: Infrastructure) -> Running:
    import os

    atomic = os.environ.get("COUNTING_ATOMIC", "true") != "false"
    projection = await run_in_threadpool(CountingProjection, infra.settings, atomic=atomic)
    return Running(client=None, consumers=[Consumer(projection, infra.bus, SOURCE)])


# Started after lookup, over lookup's events (added to discovered products in tests only).
product = Product(name=NAME, query=None, mutation=None, start=_start, after=("lookup",))
