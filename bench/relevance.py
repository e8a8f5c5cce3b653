"""Search relevance on the evaluation set in tests/relevance/queries.tsv: recall@5 and MRR
per category, on the embedded index (import ICD-10-CM first, e.g. with `make serve`).

Usage: DATA_DIR=var python bench/relevance.py [--misses]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.shared.search.engine import search  # noqa: E402
from services.shared.search.sqlite import SQLiteCatalog  # noqa: E402


async def evaluate(data_dir: Path, show_misses: bool) -> None:
    catalog = SQLiteCatalog(data_dir / "search.sqlite")
    hits: dict[str, list[float]] = defaultdict(list)
    with (ROOT / "tests" / "relevance" / "queries.tsv").open() as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    for row in rows:
        expected = set(row["expected"].split("|"))
        found = [d.code for d in (await search(catalog, row["query"], limit=10)).documents]
        rank = next((i for i, code in enumerate(found, 1) if code in expected), None)
        hits[row["category"]].append(1 / rank if rank else 0.0)
        if show_misses and (rank is None or rank > 5):
            print(f"  miss [{row['category']}] {row['query']!r}: want {row['expected']}, "
                  f"got {found[:5]}")
    print(f"{'category':<10} {'queries':>7} {'recall@5':>9} {'MRR':>6}")
    for category, reciprocal in sorted(hits.items()):
        recall = sum(1 for r in reciprocal if r >= 0.2) / len(reciprocal)
        mrr = sum(reciprocal) / len(reciprocal)
        print(f"{category:<10} {len(reciprocal):>7} {recall:>9.2f} {mrr:>6.2f}")
    await catalog.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--misses", action="store_true", help="list the queries that miss")
    args = parser.parse_args()
    asyncio.run(evaluate(Path(os.environ.get("DATA_DIR", "var")), args.misses))


if __name__ == "__main__":
    main()
