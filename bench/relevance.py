"""Search relevance: recall@5 and MRR per category, for each evaluation set, on each
search backend.

Sets reported apart, the honest one first:

- heldout2 (tests/relevance/heldout2.tsv): written on 2026-12-02 by someone who read
  neither the search code nor its results, its figure recorded before the changes it
  measures (bench/results/relevance-heldout2.txt) and its misses never read while
  changing search. This says how search does on what people will type next.
- heldout (tests/relevance/heldout.tsv): the first held-out set. Written blind too, but
  its misses were read in later rounds of work, so it has become development data.
- tuning (tests/relevance/queries.tsv) grew together with the lexicon and ranking, and
  probe, probe2, probe3 and probe4 were written to develop against: they measure fit.

The embedded index (tantivy) is read from DATA_DIR/search (import ICD-10-CM
first, e.g. with `make serve`). For OpenSearch, the documents of that embedded index are
written through the OpenSearch catalogue's own write path into a new index version of a
throwaway osmem server (or of the server at --opensearch-url), which is then searched
through the same shared engine. --compare evaluates both and lists the queries whose
top five differ.

Usage: DATA_DIR=var python bench/relevance.py [--backend tantivy|opensearch|both]
           [--set heldout2|heldout|tuning|probe|probe2|probe3|probe4|all] [--compare]
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

from opensearchpy import AsyncOpenSearch
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.lookup.search.documents import CODES, CodeDocument  # noqa: E402
from services.lookup.search.engine import CANDIDATES, EMBEDDED_CANDIDATES, search  # noqa: E402
from services.shared.search.embedded import TantivyCatalog  # noqa: E402
from services.shared.search.model import (  # noqa: E402
    Checkpoint,
    IndexChange,
    SearchCatalog,
)
from services.shared.search.opensearch import OpenSearchCatalog  # noqa: E402
from tests.servers.opensearch import start_opensearch  # noqa: E402

EVALUATION = ROOT / "tests" / "relevance"
# The honest figure first (see the module docstring).
SETS = {
    "heldout2": EVALUATION / "heldout2.tsv",
    "heldout": EVALUATION / "heldout.tsv",
    "tuning": EVALUATION / "queries.tsv",
    # A second blind set, written after the held-out one to develop against: tuning too.
    "probe": EVALUATION / "probe.tsv",
    # A third, of sentences and shorthand only, written blind on 2026-12-05 to develop
    # against where held-out II still misses the bar: tuning too.
    "probe2": EVALUATION / "probe2.tsv",
    # A fourth, of sentences, shorthand and lay names, written blind on 2026-12-05 to
    # develop against: tuning too. Its queries found in another set were left out.
    "probe3": EVALUATION / "probe3.tsv",
    # A fifth, of sentences only, written blind on 2026-12-06 to develop against: tuning
    # too. Its one query found in another set was left out.
    "probe4": EVALUATION / "probe4.tsv",
}
TOP = 5  # recall@5, and the top five compared between backends
PREFIX = "medcode-relevance"  # the OpenSearch alias this bench fills and searches
_WRITE_TIMEOUT = 120  # seconds


@dataclass(frozen=True)
class Query:
    set: str  # a key of SETS
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


def load_queries(names: list[str]) -> list[Query]:
    """The queries of the named evaluation sets, in the order of ``names``."""
    queries = []
    for name in names:
        with SETS[name].open() as f:
            queries += [
                Query(name, row["category"], row["query"], frozenset(row["expected"].split("|")))
                for row in csv.DictReader(f, delimiter="\t")
            ]
    return queries


async def evaluate(
    catalog: SearchCatalog, queries: list[Query], candidates: int
) -> list[Outcome]:
    """Every query through the shared engine, on whichever backend ``catalog`` is, ranking
    as many of its best matches as that backend's searches do (``candidates``)."""
    return [
        Outcome(q, [d.code for d in (await search(catalog, q.text, limit=10,
                                                  candidates=candidates)).documents])
        for q in queries
    ]


@dataclass(frozen=True)
class Figure:
    """Recall@5 and MRR of one group of outcomes."""

    queries: int
    recall: float
    mrr: float

    @classmethod
    def of(cls, outcomes: list[Outcome]) -> Figure:
        reciprocals = [o.reciprocal_rank for o in outcomes]
        return cls(
            len(reciprocals),
            sum(1 for r in reciprocals if r >= 1 / TOP) / len(reciprocals),
            sum(reciprocals) / len(reciprocals),
        )


def figures(outcomes: list[Outcome]) -> dict[str, dict[str, Figure]]:
    """Set -> category (and "all") -> figure."""
    grouped: dict[str, dict[str, list[Outcome]]] = defaultdict(lambda: defaultdict(list))
    for outcome in outcomes:
        grouped[outcome.query.set][outcome.query.category].append(outcome)
        grouped[outcome.query.set]["all"].append(outcome)
    return {
        name: {category: Figure.of(group) for category, group in sorted(categories.items())}
        for name, categories in grouped.items()
    }


def report(backend: str, outcomes: list[Outcome], show_misses: bool) -> None:
    print(f"\n== {backend}")
    for name, categories in figures(outcomes).items():
        if show_misses:
            for outcome in outcomes:
                if outcome.query.set == name and outcome.reciprocal_rank < 1 / TOP:
                    print(
                        f"  miss {name} [{outcome.query.category}] {outcome.query.text!r}: want "
                        f"{'|'.join(sorted(outcome.query.expected))}, got {outcome.found[:TOP]}"
                    )
        print(f"-- {name}")
        print(f"{'category':<12} {'queries':>7} {'recall@5':>9} {'MRR':>6}")
        for category, figure in categories.items():
            print(f"{category:<12} {figure.queries:>7} {figure.recall:>9.2f} {figure.mrr:>6.2f}")


def summary(results: dict[str, list[Outcome]]) -> None:
    """One table: each set and category, recall@5 and MRR on every backend side by side."""
    tables = {backend: figures(outcomes) for backend, outcomes in results.items()}
    backends = list(tables)
    print("\n== summary: recall@5 / MRR")
    print(f"{'set':<8} {'category':<12} {'queries':>7} " + " ".join(f"{b:>17}" for b in backends))
    first = tables[backends[0]]
    for name, categories in first.items():
        for category, figure in categories.items():
            cells = " ".join(
                f"{tables[b][name][category].recall:>8.2f} /{tables[b][name][category].mrr:>6.2f} "
                for b in backends
            )
            print(f"{name:<8} {category:<12} {figure.queries:>7} {cells}")


def compare(backend: str, outcomes: list[Outcome], reference: list[Outcome]) -> None:
    """The queries whose top five differ from the embedded (tantivy) backend's."""
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
        # A patient client: bulk writes on a loaded machine take longer than the default 10 s.
        catalog = OpenSearchCatalog(
            lambda: AsyncOpenSearch(url, timeout=_WRITE_TIMEOUT), CODES, prefix=PREFIX
        )
        try:
            await fill(catalog, documents, args.batch)
            yield catalog
        finally:
            await catalog.close()


async def run(args: argparse.Namespace) -> None:
    queries = load_queries(list(SETS) if args.set == "all" else [args.set])
    both = args.compare or args.backend == "both"
    backends = ["tantivy", "opensearch"] if both else [args.backend]
    results: dict[str, list[Outcome]] = {}
    async with embedded_catalog(Path(os.environ.get("DATA_DIR", "var"))) as local:
        for backend in backends:
            async with catalog_of(backend, local, args) as catalog:
                started = time.monotonic()
                told = EMBEDDED_CANDIDATES if backend == "tantivy" else CANDIDATES
                results[backend] = await evaluate(catalog, queries, told)
                elapsed = time.monotonic() - started
            report(backend, results[backend], args.misses)
            print(f"({len(queries)} queries in {elapsed:.1f} s)")
    summary(results)
    for backend, outcomes in results.items():
        if args.compare and backend != "tantivy" and "tantivy" in results:
            print()
            compare(backend, outcomes, results["tantivy"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--backend", choices=["tantivy", "opensearch", "both"], default="both"
    )
    parser.add_argument(
        "--set",
        choices=[*SETS, "all"],
        default="all",
        help="the evaluation set to run (default all, each reported apart)",
    )
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
