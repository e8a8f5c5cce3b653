"""How the ranker reads one text of an entry (its title or a term): once per text.

A search ranks a few hundred texts; terms recur across entries, and reading a text
(folding, stemming, picking out its details) costs more than scoring it. Each text is
read once into a ``Reading`` and kept while it is among the recently read.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from services.lookup.search.wording import detail_stems, name_key, stem_sequence
from services.shared.search.text import stem, words


@dataclass(frozen=True, slots=True)
class Reading:
    words: frozenset[str]  # folded words as written (prefixes, "nos")
    stems: frozenset[str]  # their stems
    details: frozenset[str]  # the details it states (wording.detail_stems)
    sequence: tuple[str, ...]  # stems in order, stopwords out (phrases)
    name: tuple[str, ...]  # the text as a name (wording.name_key)


@lru_cache(maxsize=32768)
def read(text: str) -> Reading:
    found = words(text)
    return Reading(
        frozenset(found),
        frozenset(stem(w) for w in found),
        detail_stems.__wrapped__(text),
        stem_sequence.__wrapped__(text),
        name_key.__wrapped__(text),
    )
