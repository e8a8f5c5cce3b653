"""Text folding shared by query analysis and ranking, so both modes read words alike."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_WORD = re.compile(r"[a-z0-9]+")
MAX_QUERY_WORDS = 16


def fold(text: str) -> str:
    """Lower case, accents stripped, odd Unicode (full-width, ligatures) made plain."""
    if text.isascii():
        return text.lower()
    normal = unicodedata.normalize("NFKD", text)
    return "".join(c for c in normal if not unicodedata.combining(c)).lower()


def words(text: str) -> list[str]:
    return _WORD.findall(fold(text))


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light English suffix strip, enough to let "fractures" meet "fracture"."""
    for suffix, keep in (("ies", "y"), ("sses", "ss"), ("es", "e"), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            return word[: -len(suffix)] + keep
    return word


@lru_cache(maxsize=262144)
def stems(text: str) -> frozenset[str]:
    """The stemmed words of an indexed text; cached, as titles recur in every search."""
    return frozenset(stem(w) for w in words(text))
