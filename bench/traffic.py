"""First-time search traffic, as a search box sends it: generated, seeded, repeatable.

A person types a few words of what they mean, and the box sends a query on keystrokes,
so most queries are ones the server has not seen. This builds ``n`` distinct queries of
one to three consecutive words of the official titles (ICD-10-CM tabular and ICD-10-PCS,
as shipped), four in ten cut mid-word as if still typing. The same seed gives the same
queries on every machine.
"""

from __future__ import annotations

import random
import re
from functools import cache

from services.lookup.icd10cm import default_tabular_path, parse_tabular
from services.lookup.icd10pcs import default_pcs_path, parse_pcs

SEED = 20261202
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*[A-Za-z]|[A-Za-z0-9]+")
_CUT_SHARE = 0.4


@cache
def official_titles() -> tuple[str, ...]:
    """Every title of the shipped ICD-10-CM and ICD-10-PCS releases."""
    cm = parse_tabular(default_tabular_path())
    pcs = parse_pcs(default_pcs_path())
    return tuple(e.title for e in cm.entries) + tuple(e.title for e in pcs.entries)


def first_time_queries(n: int = 30_000, seed: int = SEED) -> list[str]:
    """``n`` distinct queries: 1-3 consecutive title words, lower case, 40% cut mid-word
    (at least two letters of the last word kept)."""
    titles = official_titles()
    rng = random.Random(seed)
    seen: set[str] = set()
    found: list[str] = []
    while len(found) < n:
        words = _WORD.findall(rng.choice(titles))
        if not words:
            continue
        size = min(rng.choice((1, 2, 2, 3, 3)), len(words))
        start = rng.randrange(len(words) - size + 1)
        picked = [w.lower() for w in words[start : start + size]]
        if rng.random() < _CUT_SHARE and len(picked[-1]) > 3:
            picked[-1] = picked[-1][: rng.randrange(2, len(picked[-1]))]
        query = " ".join(picked)
        if query not in seen:
            seen.add(query)
            found.append(query)
    return found
