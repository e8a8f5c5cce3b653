"""As-you-type search: whether the top results continue what was typed. Prints figures,
asserts nothing.

A search box sends every keystroke, so a query's last word is often a word still being
typed ("open fr"). Over the first --queries of bench/traffic.py's first-time queries of
two words or more, this counts how often a result's title holds the other words (stopwords
aside) and a word the last one begins: the first result, and any of the first five, by
how many letters of the last word were typed, each query searched as a search box sends a
keystroke (``typing``) and as sent whole. The queries are cut from official titles, so
some title always holds them; no relevance set names the expected code.

Usage: python bench/as_you_type.py [--data-dir DIR] [--queries 6000]
(DIR holds the imports, e.g. the ``var`` of ``make serve``; default DATA_DIR or var.)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.traffic import first_time_queries  # noqa: E402
from services.lookup.search.documents import CODES, CodeDocument  # noqa: E402
from services.lookup.search.engine import EMBEDDED_CANDIDATES, search, warm  # noqa: E402
from services.lookup.search.wording import STOPWORDS  # noqa: E402
from services.shared.search.embedded import TantivyCatalog  # noqa: E402
from services.shared.search.text import words  # noqa: E402


def continues(doc: CodeDocument, others: set[str], last: str) -> bool:
    """Whether the title holds the other words and a word beginning with the last."""
    held = words(doc.title)
    return others <= set(held) and any(w.startswith(last) for w in held)


def group(last: str) -> str:
    return {1: "1 letter", 2: "2 letters", 3: "3 letters"}.get(len(last), "4 or more")


async def measure(data_dir: Path, n: int) -> None:
    """Each query searched as a search box sends a keystroke (``typing``) and as sent
    whole (Enter, or a client that does not say)."""
    catalog = TantivyCatalog(data_dir / "search", CODES)
    await warm(catalog)
    asked = Counter[str]()
    first = {typing: Counter[str]() for typing in (True, False)}
    five = {typing: Counter[str]() for typing in (True, False)}
    for query in first_time_queries(n):
        typed = words(query)
        if len(typed) < 2 or typed[-1] in STOPWORDS:
            continue
        last, others = typed[-1], set(typed[:-1]) - STOPWORDS
        kind = group(last)
        asked[kind] += 1
        for typing in (True, False):
            found = (await search(catalog, query, limit=5, count=False, typing=typing,
                                  candidates=EMBEDDED_CANDIDATES)).documents
            first[typing][kind] += bool(found) and continues(found[0], others, last)
            five[typing][kind] += any(continues(d, others, last) for d in found)
    print(f"{'':<27} {'typing':>22} {'sent whole':>22}")
    print(f"{'last word typed':<18} {'queries':>8}"
          + f" {'first result':>13} {'any of five':>12}" * 2)
    for kind in sorted(asked):
        print(f"{kind:<18} {asked[kind]:>8,}" + "".join(
            f" {first[typing][kind] / asked[kind]:>13.2f} {five[typing][kind] / asked[kind]:>12.2f}"
            for typing in (True, False)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path,
                        default=Path(os.environ.get("DATA_DIR", ROOT / "var")))
    parser.add_argument("--queries", type=int, default=6000)
    options = parser.parse_args()
    asyncio.run(measure(options.data_dir, options.queries))


if __name__ == "__main__":
    main()
