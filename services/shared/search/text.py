"""Word folding and stemming, as the search backends read text.

Words are runs of letters and digits, folded (lower case, no accents) and stemmed with
the Porter algorithm, the one FTS5's porter tokenizer and Lucene's English stemmer
apply, so a product's ranker sees a word as every backend indexes it. Nothing here
knows a product's vocabulary: stopwords, notation and word lists are the product's.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Final

from services.shared.search.porter import porter

_WORD: Final = re.compile(r"[a-z0-9]+")

# Irregular forms the Porter stemmer leaves apart from their stem: plurals ("feet" and
# "foot") and past tenses and participles ("bitten by a dog" is an "open bite", a "torn"
# meniscus a "tear", "fell" a "fall"). Not "swollen": titles say "swelling" of a lump
# ("Localized swelling, mass and lump"), and a swollen ankle is "edema".
IRREGULAR: Final = {
    "feet": "foot", "teeth": "tooth", "children": "child", "women": "woman", "men": "man",
    "calves": "calf",
    "bitten": "bite", "stung": "sting", "fell": "fall", "torn": "tear", "tore": "tear",
    "bled": "bleed", "burnt": "burn", "fallen": "fall",
}  # fmt: skip

# Each irregular form by the stem it is read as ("fall": "fell", "fallen").
_IRREGULAR_FORMS: Final = {
    porter(regular): tuple(f for f, r in IRREGULAR.items() if r == regular)
    for regular in set(IRREGULAR.values())
}


def fold(text: str) -> str:
    """Lower case, accents stripped, odd Unicode (full-width, ligatures) made plain."""
    if text.isascii():
        return text.lower()
    normal = unicodedata.normalize("NFKD", text)
    return "".join(c for c in normal if not unicodedata.combining(c)).lower()


def breaks(keep: str = "") -> str:
    """A ``str.translate`` table for ASCII text that makes a space of every character
    but a lower-case letter, a digit or one of ``keep``: a folded ASCII text's words are
    then its ``split()``, quicker than matching a pattern (0.7 against 1.2 microseconds
    a title), and a search reads thousands of texts. A string, indexed by code point:
    with a dict, every character it leaves alone is a failed look-up."""
    return "".join(
        chr(c) if "a" <= chr(c) <= "z" or "0" <= chr(c) <= "9" or chr(c) in keep else " "
        for c in range(128)
    )


_BREAKS: Final = breaks()


def folded_words(folded: str) -> list[str]:
    """The words of a folded text: its runs of letters and digits."""
    if folded.isascii():
        return folded.translate(_BREAKS).split()
    return _WORD.findall(folded)  # (fold leaves some letters not ASCII: "ø", "ß")


def words(text: str) -> list[str]:
    return folded_words(fold(text))


# Stems of the words met lately, in each process: a first-time search asks for about
# 5,000, nearly all of words met before. A plain dict, emptied when full (what people
# type is unbounded; the index's words come back at once): a compiled caller looks a
# word up directly, where an lru_cache is a call that also reorders its list.
_STEMS: Final[dict[str, str]] = {}
_MAX_STEMS: Final = 131072


def stem(word: str) -> str:
    """The Porter stem of a folded word, as FTS5's porter tokenizer and Lucene reduce it
    (an irregular plural first made singular: "feet" is "foot")."""
    found = _STEMS.get(word)
    if found is None:
        if len(_STEMS) >= _MAX_STEMS:
            _STEMS.clear()
        regular = IRREGULAR.get(word, word)
        found = _STEMS[word] = (
            porter(regular) if len(regular) > 2 and regular.isalpha() else regular
        )
    return found


def stem_marks(stem_: str) -> tuple[str, ...]:
    """What every word with this stem holds: a text holding none of these (folded) has
    no such word, and need not be read word by word to know it.

    Porter rewrites at most a word's last two letters into its stem's last two ("y" ->
    "i", an "e" added, "biliti" -> "ble"); the rest of a stem begins the word. An
    irregular form ("feet" for "foot") is its own mark.
    """
    mark = stem_[:-1] if stem_.endswith(("e", "i")) else stem_
    mark = mark[:-1] if mark.endswith("bl") else mark
    return (mark, *_IRREGULAR_FORMS.get(stem_, ()))


@lru_cache(maxsize=16384)  # texts: bounded, they are many
def word_set(text: str) -> frozenset[str]:
    """The folded words of an indexed text, as written (for prefix matching)."""
    return frozenset(words(text))


@lru_cache(maxsize=16384)  # texts: bounded, they are many
def stems(text: str) -> frozenset[str]:
    """The stemmed words of an indexed text; cached, as titles recur in every search."""
    return frozenset(stem(w) for w in words(text))
