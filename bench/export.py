"""Event export benchmark (embedded mode): prints events per second, asserts nothing.

Imports the shipped ICD-10-CM release into a fresh store (tens of thousands of
``CodeAdded`` events), then exports the whole log with ``medcode events export`` as
JSON Lines and as Parquet, each a few times, and prints the best run of each. Goal:
at least 10,000 events/s for both formats. The Parquet file is read back with DuckDB
to check the row count.

Usage: python bench/export.py [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from gateway import cli
from services.lookup import commands as lookup_commands
from services.shared.export import Selection
from services.shared.settings import Settings


async def main(runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(mode="embedded", data_dir=Path(tmp) / "var")
        started = time.perf_counter()
        said = await lookup_commands.import_release(cli.context(settings), "icd10cm", None)
        print(f"import: {said} ({time.perf_counter() - started:.1f}s)", file=sys.stderr)
        for fmt in ("jsonl", "parquet"):
            best = 0.0
            out = Path(tmp) / f"events.{fmt}"
            for _ in range(runs):
                started = time.perf_counter()
                count = await cli.export_events(settings, Selection(), fmt, out)
                seconds = time.perf_counter() - started
                best = max(best, count / seconds)
            size = out.stat().st_size / 1e6
            print(f"export {fmt:8} {count:7d} events  best {best:9,.0f} events/s"
                  f"  ({size:.1f} MB)")
        import duckdb

        [(rows,)] = duckdb.connect().execute(
            "SELECT count(*) FROM read_parquet(?)", [str(Path(tmp) / "events.parquet")]
        ).fetchall()
        print(f"duckdb reads {rows} rows from the Parquet file")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    asyncio.run(main(parser.parse_args().runs))
