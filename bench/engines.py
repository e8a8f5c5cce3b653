"""The embedded engines alone, one thread, the same documents and first-time queries:
how the choice of SQLite FTS5 or tantivy for embedded search was made. Prints figures.

Each engine answers every query as "all words required, the last also as a prefix, the
best 10 by BM25 (title weighing twice the terms) plus the count of all matches":

- fts5: SQLite FTS5 tuned for it: one table of title and terms (unicode61, accents
  folded), a prefix index for 2-4 letters, ``bm25()`` with ``ORDER BY ... LIMIT 10``
  and ``count(*)``; the best FTS5 managed in our tuning (the served FTS5 backend added
  Porter stems and a second, unstemmed table for prefixes, and was slower);
- tantivy: the raw bindings over the same fields (edge n-grams for the prefix);
- backend: services.shared.search.embedded, as lookup asks it (window 10, a count);
- search: lookup's whole search (analysis, spelling, retrieval, ranking), no HTTP.

The documents are those of the embedded index under DATA_DIR (``make serve`` or
``python bench/throughput.py`` builds it); both engines are built from them in a
temporary directory (a few minutes on a loaded machine).

Usage: DATA_DIR=var python bench/engines.py [--queries 3000] [--engines fts5,tantivy,...]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import tantivy
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.traffic import first_time_queries  # noqa: E402
from services.lookup.search.documents import CODES, CodeDocument, code_plan  # noqa: E402
from services.lookup.search.engine import EMBEDDED_CANDIDATES, search, warm  # noqa: E402
from services.shared.search.embedded import TantivyCatalog  # noqa: E402
from services.shared.search.embedded.layout import starts_of  # noqa: E402
from services.shared.search.text import words  # noqa: E402

ENGINES = ("fts5", "tantivy", "backend", "search")


def timed(name: str, queries: list[str], answer: Callable[[str], object]) -> None:
    for q in queries[:50]:  # warm caches
        answer(q)
    spent: list[float] = []
    started = time.perf_counter()
    for q in queries:
        t = time.perf_counter()
        answer(q)
        spent.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - started
    ordered = sorted(spent)
    p50, p99 = ordered[len(ordered) // 2] * 1000, ordered[int(len(ordered) * 0.99)] * 1000
    print(
        f"{name:<8} {len(queries) / elapsed:8,.0f} q/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms"
        f"   mean {statistics.mean(spent) * 1000:6.2f} ms",
        flush=True,
    )


def fts5(documents: list[CodeDocument], where: Path) -> Callable[[str], object]:
    db = sqlite3.connect(where / "fts5.sqlite")
    db.execute(
        "CREATE VIRTUAL TABLE docs USING fts5(title, terms, tokenize='unicode61"
        " remove_diacritics 2', prefix='2 3 4')"
    )
    with db:
        db.executemany(
            "INSERT INTO docs (rowid, title, terms) VALUES (?, ?, ?)",
            ((i, d.title, " | ".join(d.terms)) for i, d in enumerate(documents)),
        )
    db.execute("INSERT INTO docs (docs) VALUES ('optimize')")

    def answer(query: str) -> object:
        tokens = words(query)
        if not tokens:
            return None
        match = " AND ".join(f'"{w}"' for w in tokens[:-1]) + (" AND " if len(tokens) > 1 else "")
        match += f'"{tokens[-1]}"*'
        top = db.execute(
            "SELECT rowid FROM docs WHERE docs MATCH ? ORDER BY bm25(docs, 2.0, 1.0) LIMIT 10",
            (match,),
        ).fetchall()
        count = db.execute("SELECT count(*) FROM docs WHERE docs MATCH ?", (match,)).fetchone()
        return top, count

    return answer


def raw_tantivy(documents: list[CodeDocument], where: Path) -> Callable[[str], object]:
    builder = tantivy.SchemaBuilder()
    for field in ("title", "terms"):
        builder.add_text_field(field, tokenizer_name="ws", index_option="freq")
        builder.add_text_field(f"{field}_p", tokenizer_name="ws", index_option="basic")
    schema = builder.build()
    (where / "tantivy").mkdir()
    index = tantivy.Index(schema, path=str(where / "tantivy"))
    spaces = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace()).build()
    index.register_tokenizer("ws", spaces)
    writer = index.writer(heap_size=100_000_000, num_threads=1)
    for d in documents:
        doc = tantivy.Document()
        terms = " ".join(d.terms)
        doc.add_text("title", " ".join(words(d.title)))
        doc.add_text("terms", " ".join(words(terms)))
        doc.add_text("title_p", starts_of([d.title]))
        doc.add_text("terms_p", starts_of([terms]))
        writer.add_document(doc)
    writer.commit()
    writer.wait_merging_threads()
    index.reload()
    Q, Occur = tantivy.Query, tantivy.Occur

    def either(field: str, word: str, boost: float) -> tantivy.Query:
        return Q.boost_query(Q.term_query(schema, field, word), boost)

    def answer(query: str) -> object:
        tokens = words(query)
        if not tokens:
            return None
        clauses = [
            Q.disjunction_max_query([either("title", w, 2.0), either("terms", w, 1.0)])
            for w in tokens[:-1]
        ]
        last = tokens[-1]
        clauses.append(
            Q.disjunction_max_query(
                [either("title", last, 2.0), either("terms", last, 1.0),
                 either("title_p", last, 1.0), either("terms_p", last, 0.5)]
            )
        )
        found = Q.boolean_query([(Occur.Must, c) for c in clauses])
        return index.searcher().search(found, 10, count=True)

    return answer


def timed_search(catalog: TantivyCatalog[CodeDocument], queries: list[str]) -> None:
    """Lookup's whole search, awaited one query at a time on one event loop."""
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(warm(catalog))
        timed("search", queries, lambda q: loop.run_until_complete(
            search(catalog, q, candidates=EMBEDDED_CANDIDATES)))
    finally:
        loop.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queries", type=int, default=3000)
    parser.add_argument("--engines", default=",".join(ENGINES))
    args = parser.parse_args()
    chosen = args.engines.split(",")
    data_dir = Path(os.environ.get("DATA_DIR", "var"))
    if not (data_dir / "search").is_dir():
        raise SystemExit(f"no embedded index under {data_dir}: run `make serve` (or "
                         "python bench/throughput.py --data-dir DIR) first, then DATA_DIR=DIR")
    queries = first_time_queries()[: args.queries]
    catalog = TantivyCatalog(data_dir / "search", CODES)
    live = catalog.live_now()
    print(f"{len(queries):,} first-time queries (bench/traffic.py), one thread")
    with tempfile.TemporaryDirectory() as tmp:
        documents: list[CodeDocument] = []
        if "fts5" in chosen or "tantivy" in chosen:
            documents = asyncio.run(live.documents())
            print(f"{len(documents):,} documents from {live.path}")
        builders = {"fts5": fts5, "tantivy": raw_tantivy}
        for name in chosen:
            if name in builders:
                with tqdm(total=1, desc=f"building {name}", file=sys.stderr) as bar:
                    answer = builders[name](documents, Path(tmp))
                    bar.update()
                timed(name, queries, answer)
            elif name == "backend":
                timed(name, queries,
                      lambda q: live.candidates_now(code_plan(tuple(words(q)), window=10)))
            elif name == "search":
                timed_search(catalog, queries)


if __name__ == "__main__":
    main()
