"""PostgreSQL recorders: a batch in one statement, and schema creation one process at a time.

The library's recorder writes a batch with ``executemany`` in pipeline mode. With a
release import (tens of thousands of events in one transaction) that pipeline can stall
with client and server each waiting for the other (seen here with psycopg 3.3, both
implementations; cf. psycopg issue 685). This recorder keeps everything that matters
(the EXCLUSIVE table lock that makes insert order equal commit order, the NOTIFY for
subscribers, the uniqueness check on originator id and version) and sends the rows as
four arrays in a single ``INSERT ... SELECT FROM unnest(...)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresFactory,
    PostgresTrackingRecorder,
)
from psycopg.sql import SQL, Identifier

# Any fixed key: every medcode process takes the same lock to create tables and types.
_SCHEMA_LOCK = 0x6D6564636F6465


def _create_serially(datastore: PostgresDatastore, create: Any) -> None:
    """Run ``create`` while holding a cluster-wide advisory lock.

    Processes starting together (gateway, services, workers) would otherwise race on
    CREATE TYPE / CREATE TABLE IF NOT EXISTS, and the loser fails on a duplicate key in
    the system catalogue.
    """
    with datastore.get_connection() as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_SCHEMA_LOCK,))
        try:
            create()
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_SCHEMA_LOCK,))


class SerialAggregateRecorder(PostgresAggregateRecorder):
    """Snapshots."""

    def create_table(self) -> None:
        _create_serially(self.datastore, super().create_table)


class SerialTrackingRecorder(PostgresTrackingRecorder):
    def create_table(self) -> None:
        _create_serially(self.datastore, super().create_table)


class BulkInsertRecorder(PostgresApplicationRecorder):
    def create_table(self) -> None:
        _create_serially(self.datastore, super().create_table)

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if not stored_events:
            return []
        statement = SQL(
            "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state)"
            " SELECT * FROM unnest(%s::uuid[], %s::bigint[], %s::text[], %s::bytea[])"
            " RETURNING notification_id"
        ).format(schema=Identifier(self.datastore.schema),
                 table=Identifier(self.events_table_name))
        columns = (
            [e.originator_id for e in stored_events],
            [e.originator_version for e in stored_events],
            [e.topic for e in stored_events],
            [e.state for e in stored_events],
        )
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            self._lock_table(curs)
            self._notify_channel(curs)
            curs.execute(statement, columns)
            return [row["notification_id"] for row in curs.fetchall()]


class Factory(PostgresFactory):
    """eventsourcing's PostgreSQL persistence with the recorders above
    (``PERSISTENCE_MODULE=services.shared.postgres_recorder:Factory``)."""

    aggregate_recorder_class = SerialAggregateRecorder
    application_recorder_class = BulkInsertRecorder
    tracking_recorder_class = SerialTrackingRecorder
