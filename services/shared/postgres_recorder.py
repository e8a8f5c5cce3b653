"""A PostgreSQL application recorder that writes a whole batch in one statement.

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
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.sql import SQL, Identifier


class BulkInsertRecorder(PostgresApplicationRecorder):
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
