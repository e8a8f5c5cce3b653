"""Search relevance on the evaluation set in tests/relevance/queries.tsv: recall@5 and MRR
per category, on either search backend.

The embedded index (tantivy) is read from DATA_DIR/search (import ICD-10-CM
first, e.g. with `make serve`). For OpenSearch, the documents of that SQLite index are
written through the OpenSearch catalogue's own write path into a new index version of a
throwaway osmem server (or of the server at --opensearch-url), which is then searched
through the same shared engine. --compare evaluates both and lists the queries whose
top five differ.

Usage: DATA_DIR=var python bench/relevance.py [--backend tantivy|opensearch] [--compare]
           [--opensearch-url URL] [--batch N] [--misses]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.lookup.search.documents import CODES, CodeDocument  # noqa: E402
from services.lookup.search.engine import search  # noqa: E402
from services.shared.search.embedded import TantivyCatalog  # noqa: E402
from services.shared.search.model import (  # noqa: E402
    Checkpoint,
    IndexChange,
    SearchCatalog,
)
from services.shared.search.opensearch import OpenSearchCatalog  # noqa: E402
from tests.servers.opensearch import start_opensearch  # noqa: E402

QUERIES = ROOT / "tests" / "relevance" / "queries.tsv"
TOP = 5  # recall@5, and the top five compared between backends
PREFIX = "medcode-relevance"  # the OpenSearch alias this bench fills and searches


@dataclass(frozen=True)
class Query:
    category: str
    text: str
    expected: frozenset[str]


@dataclass(frozen=True)
class Outcome:
    query: Query
    found: list[str]  # codes, best first

    @property
    def reciprocal_rank(self) -> float:
        rank = next((i for i, c in enumerate(self.found, 1) if c in self.query.expected), None)
        return 1 / rank if rank else 0.0


def load_queries() -> list[Query]:
    with QUERIES.open() as f:
        return [
            Query(row["category"], row["query"], frozenset(row["expected"].split("|")))
            for row in csv.DictReader(f, delimiter="\t")
        ]


async def evaluate(catalog: SearchCatalog, queries: list[Query]) -> list[Outcome]:
    """Every query through the shared engine, on whichever backend ``catalog`` is."""
    return [
        Outcome(q, [d.code for d in (await search(catalog, q.text, limit=10)).documents])
        for q in queries
    ]


def report(backend: str, outcomes: list[Outcome], show_misses: bool) -> None:
    print(f"\n== {backend}")
    by_category: dict[str, list[float]] = defaultdict(list)
    for outcome in outcomes:
        reciprocal = outcome.reciprocal_rank
        by_category[outcome.query.category].append(reciprocal)
        if show_misses and reciprocal < 1 / TOP:
            print(
                f"  miss [{outcome.query.category}] {outcome.query.text!r}: want "
                f"{'|'.join(sorted(outcome.query.expected))}, got {outcome.found[:TOP]}"
            )
    print(f"{'category':<10} {'queries':>7} {'recall@5':>9} {'MRR':>6}")
    for category, reciprocals in sorted(by_category.items()):
        recall = sum(1 for r in reciprocals if r >= 1 / TOP) / len(reciprocals)
        mrr = sum(reciprocals) / len(reciprocals)
        print(f"{category:<10} {len(reciprocals):>7} {recall:>9.2f} {mrr:>6.2f}")


def compare(backend: str, outcomes: list[Outcome], reference: list[Outcome]) -> None:
    """The queries whose top five differ from the SQLite backend's."""
    differing = [
        (mine, theirs)
        for mine, theirs in zip(outcomes, reference, strict=True)
        if mine.found[:TOP] != theirs.found[:TOP]
    ]
    print(
        f"{backend}: top {TOP} differs from tantivy on {len(differing)} of {len(outcomes)} queries"
    )
    for mine, theirs in differing:
        print(
            f"  [{mine.query.category}] {mine.query.text!r}\n"
            f"      tantivy    {theirs.found[:TOP]}\n"
            f"      {backend:<10} {mine.found[:TOP]}"
        )


# --- catalogues -------------------------------------------------------------------------


@asynccontextmanager
async def embedded_catalog(data_dir: Path) -> AsyncIterator[TantivyCatalog[CodeDocument]]:
    path = data_dir / "search"
    if not path.exists():
        raise SystemExit(f"no search index at {path}: import the code systems first")
    catalog = TantivyCatalog(path, CODES)
    try:
        yield catalog
    finally:
        await catalog.close()


@contextmanager
def opensearch_server(url: str | None) -> Iterator[str]:
    """The server at ``url``, or a throwaway osmem started for this run."""
    if url:
        yield url
        return
    with start_opensearch() as started:
        yield started


async def fill(target: SearchCatalog, documents: list[CodeDocument], batch: int) -> None:
    """Write ``documents`` into a new version of ``target`` in batches, then promote it
    (which drops the versions an earlier run against the same server left)."""
    index = await target.create_version()
    started = time.monotonic()
    with tqdm(total=len(documents), unit="doc", desc=f"filling {index.name}") as progress:
        for n, start in enumerate(range(0, len(documents), batch), 1):
            chunk = documents[start : start + batch]
            checkpoint = Checkpoint("bench-relevance", "embedded", position=n, cursor=start)
            await index.write(IndexChange(upserts=chunk), checkpoint)
            progress.update(len(chunk))
    await target.promote(index)
    count = await index.count()
    print(f"filled {index.name}: {count} documents in {time.monotonic() - started:.1f} s")
    if count != len(documents):
        raise SystemExit(f"{index.name} holds {count} documents, not {len(documents)}")


@asynccontextmanager
async def catalog_of(
    backend: str, local: TantivyCatalog[CodeDocument], args: argparse.Namespace
) -> AsyncIterator[SearchCatalog]:
    """The catalogue to search: the embedded one itself, or an OpenSearch one filled with
    exactly its documents."""
    if backend == "tantivy":
        yield local
        return
    documents = await (await local.live()).documents()
    with opensearch_server(args.opensearch_url) as url:
        catalog = OpenSearchCatalog(url, CODES, prefix=PREFIX)
        try:
            await fill(catalog, documents, args.batch)
            yield catalog
        finally:
            await catalog.close()


async def run(args: argparse.Namespace) -> None:
    queries = load_queries()
    backends = ["tantivy", "opensearch"] if args.compare else [args.backend]
    results: dict[str, list[Outcome]] = {}
    async with embedded_catalog(Path(os.environ.get("DATA_DIR", "var"))) as local:
        for backend in backends:
            async with catalog_of(backend, local, args) as catalog:
                started = time.monotonic()
                results[backend] = await evaluate(catalog, queries)
                elapsed = time.monotonic() - started
            report(backend, results[backend], args.misses)
            print(f"({len(queries)} queries in {elapsed:.1f} s)")
    for backend, outcomes in results.items():
        if backend != "tantivy" and "tantivy" in results:
            print()
            compare(backend, outcomes, results["tantivy"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["tantivy", "opensearch"], default="tantivy")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="evaluate both backends and list queries whose top 5 differ",
    )
    parser.add_argument(
        "--opensearch-url", help="an OpenSearch server to fill (default: start osmem)"
    )
    parser.add_argument(
        "--batch", type=int, default=2000, help="documents per bulk write when filling OpenSearch"
    )
    parser.add_argument("--misses", action="store_true", help="list the queries that miss")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
