"""The event log for analysts: envelopes as JSON Lines or Parquet.

Both formats hold the same rows in log order (per source), from the same filters; the
payload, whose shape depends on the event type and version, is a JSON text column in
Parquet (DuckDB reads it with ``payload::JSON`` / ``json_extract``), so one file holds
every type and the columns analysts filter on are typed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from eventsourcing.application import Application

from services.shared.envelope import Envelope
from services.shared.publishing import EventCatalogue

FORMATS = ("jsonl", "parquet")
_ROWS_PER_GROUP = 50_000


@dataclass(frozen=True)
class Selection:
    """Which envelopes an export holds."""

    service: str | None = None
    type: str | None = None
    since: datetime | None = None
    limit: int | None = None


def select(
    sources: Iterable[tuple[Application[Any], EventCatalogue]], selection: Selection
) -> Iterator[Envelope]:
    """The envelopes of each source in log order, filtered, at most ``limit`` in all."""
    if selection.limit is not None and selection.limit <= 0:
        return
    written = 0
    for app, catalogue in sources:
        if selection.service and catalogue.source != selection.service:
            continue
        for envelope in catalogue.iterate(app):
            if selection.type and envelope.type != selection.type:
                continue
            if selection.since and envelope.occurred_at < selection.since:
                continue
            yield envelope
            written += 1
            if selection.limit is not None and written >= selection.limit:
                return


def write_jsonl(envelopes: Iterable[Envelope], out: TextIO) -> int:
    count = 0
    for envelope in envelopes:
        out.write(json.dumps(envelope.to_dict(), separators=(",", ":")) + "\n")
        count += 1
    return count


def parquet_schema() -> Any:
    import pyarrow as pa

    return pa.schema([
        ("id", pa.string()),
        ("type", pa.string()),
        ("schema_version", pa.int32()),
        ("source", pa.string()),
        ("position", pa.int64()),
        ("aggregate_id", pa.string()),
        ("aggregate_version", pa.int64()),
        ("occurred_at", pa.timestamp("us", tz="UTC")),
        ("correlation_id", pa.string()),
        ("payload", pa.string()),  # JSON text
    ])


def write_parquet(envelopes: Iterable[Envelope], path: Path) -> int:
    """Write row groups of up to 50,000 envelopes; the file is complete or absent."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = parquet_schema()
    columns: dict[str, list[Any]] = {name: [] for name in schema.names}
    count = 0
    partial = path.with_name(path.name + ".partial")

    def flush(writer: Any) -> None:
        writer.write_table(pa.Table.from_pydict(columns, schema=schema))
        for values in columns.values():
            values.clear()

    dumps = json.JSONEncoder(separators=(",", ":")).encode
    try:
        with pq.ParquetWriter(partial, schema, compression="zstd") as writer:
            for e in envelopes:
                columns["id"].append(str(e.id))
                columns["type"].append(e.type)
                columns["schema_version"].append(e.schema_version)
                columns["source"].append(e.source)
                columns["position"].append(e.position)
                columns["aggregate_id"].append(str(e.aggregate_id))
                columns["aggregate_version"].append(e.aggregate_version)
                columns["occurred_at"].append(e.occurred_at)
                columns["correlation_id"].append(
                    str(e.correlation_id) if e.correlation_id else None)
                columns["payload"].append(dumps(e.payload))
                count += 1
                if len(columns["id"]) >= _ROWS_PER_GROUP:
                    flush(writer)
            if columns["id"] or count == 0:
                flush(writer)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return count
