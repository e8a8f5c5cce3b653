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
_PAGE = 5_000  # notifications read from the store at once
_BATCH = 10_000  # envelopes turned into lines at once


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
        for envelope in catalogue.iterate(app, page=_PAGE):
            if selection.type and envelope.type != selection.type:
                continue
            if selection.since and envelope.occurred_at < selection.since:
                continue
            yield envelope
            written += 1
            if selection.limit is not None and written >= selection.limit:
                return


def batches(envelopes: Iterable[Envelope], size: int = _BATCH) -> Iterator[list[Envelope]]:
    batch: list[Envelope] = []
    for envelope in envelopes:
        batch.append(envelope)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def write_jsonl(envelopes: Iterable[Envelope], out: TextIO) -> int:
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    count = 0
    for batch in batches(envelopes):
        out.write("".join([dumps(e.to_dict()) + "\n" for e in batch]))
        count += len(batch)
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


def record_batch(envelopes: list[Envelope]) -> Any:
    """The envelopes as one Arrow record batch: each column built in one pass."""
    import pyarrow as pa

    schema = parquet_schema()
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    columns = [
        [str(e.id) for e in envelopes],
        [e.type for e in envelopes],
        [e.schema_version for e in envelopes],
        [e.source for e in envelopes],
        [e.position for e in envelopes],
        [str(e.aggregate_id) for e in envelopes],
        [e.aggregate_version for e in envelopes],
        [e.occurred_at for e in envelopes],
        [str(e.correlation_id) if e.correlation_id else None for e in envelopes],
        [dumps(e.payload) for e in envelopes],
    ]
    return pa.RecordBatch.from_arrays(
        [pa.array(values, type=f.type) for values, f in zip(columns, schema, strict=True)],
        schema=schema)


def write_parquet(envelopes: Iterable[Envelope], path: Path) -> int:
    """Write row groups of up to 50,000 envelopes; the file is complete or absent."""
    import pyarrow.parquet as pq

    schema = parquet_schema()
    count = 0
    partial = path.with_name(path.name + ".partial")
    try:
        with pq.ParquetWriter(partial, schema, compression="zstd") as writer:
            for batch in batches(envelopes, _ROWS_PER_GROUP):  # a row group each
                writer.write_batch(record_batch(batch))
                count += len(batch)
            if count == 0:
                writer.write_table(schema.empty_table())
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return count
