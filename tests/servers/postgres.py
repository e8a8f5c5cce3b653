"""A fresh PostgreSQL database per test run, on the server the machine runs."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

HOST = os.environ.get("POSTGRES_HOST", "127.0.0.1")
PORT = int(os.environ.get("POSTGRES_PORT", "5432"))
USER = os.environ.get("POSTGRES_USER", "postgres")


def _admin() -> psycopg.Connection:
    try:
        return psycopg.connect(
            host=HOST, port=PORT, user=USER, dbname="postgres", autocommit=True, connect_timeout=5
        )
    except psycopg.OperationalError as exc:
        raise RuntimeError(
            f"PostgreSQL is not reachable at {HOST}:{PORT} as {USER}: {exc}. Start it "
            "(e.g. pg_ctlcluster <version> main start) or set POSTGRES_HOST/PORT/USER."
        ) from exc


@contextmanager
def fresh_database(prefix: str = "medcode_test") -> Iterator[str]:
    """Create a uniquely named database, yield its name, drop it afterwards."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    with _admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with _admin() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
