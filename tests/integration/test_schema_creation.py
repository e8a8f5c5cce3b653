"""Processes that start together (the worker and each service, in distributed mode) each
create the tables they use; on PostgreSQL two concurrent CREATE TABLE IF NOT EXISTS race
in the system catalogue and the loser fails, so every creator takes a lock first. Seen in
CI: the assistant service exited at start-up on a duplicate key for ``dead_letters``."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from services.accounts.keys import PostgresKeys
from services.shared.dead_letters import PostgresDeadLetters
from services.shared.settings import Settings
from tests.servers.postgres import fresh_database

pytestmark = pytest.mark.integration

STARTING_TOGETHER = 8


def _on_barrier(barrier: threading.Barrier, create: Callable[[str], object],
                dsn: str) -> object:
    barrier.wait()
    return create(dsn)


def create_together(create: Callable[[str], object], rounds: int = 5) -> None:
    """Each round: a fresh database, and every thread creates on the same barrier."""
    for _ in range(rounds):
        with fresh_database() as dbname:
            dsn = Settings(postgres_dbname=dbname).postgres_dsn()
            barrier = threading.Barrier(STARTING_TOGETHER)
            with ThreadPoolExecutor(STARTING_TOGETHER) as pool:
                made = [pool.submit(_on_barrier, barrier, create, dsn)
                        for _ in range(STARTING_TOGETHER)]
                for future in made:
                    future.result()  # raises what a losing process would have died of


def test_dead_letter_tables_are_created_once_by_processes_starting_together() -> None:
    create_together(PostgresDeadLetters)


def test_key_tables_are_created_once_by_processes_starting_together() -> None:
    def keys(dsn: str) -> object:
        store = PostgresKeys(dsn)
        store.close()
        return store

    create_together(keys)
