"""How the ranker reads one text of an entry (its title or a term): once per text.

A search ranks a few hundred texts; terms recur across entries, and reading a text
(folding, stemming, picking out its details) costs more than scoring it. Each text is
read once a search into a ``Reading`` (search_readings).

Most texts of a first-time search's candidates are new to the process, and many of them
hold none of the query's words, so a ``Reading`` reads its words and stems at once and
its details and name (read from the text without its asides) only when the ranker first
asks: a text that matches nothing costs one split and a few stem look-ups.

Every candidate's title is read in full, and nearly every one is new to a first-time
search: so an entry's title is read when it is indexed, kept with its document
(``Reading.kept``), and restored as the document is loaded (``restore``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from services.lookup.search.wording import (
    STOPWORDS,
    bare_tokens,
    name_and_details,
    negated_of,
    plain,
)
from services.shared.search.text import stem, words

_NONE: Final[frozenset[str]] = frozenset()

_SEARCH: Final = Path(__file__).resolve().parent
# The sources whose rules a reading follows: this module's, the wording's, and those of
# folding and stemming words.
_RULES: Final = (
    _SEARCH / "readings.py",
    _SEARCH / "wording.py",
    _SEARCH.parents[1] / "shared" / "search" / "text.py",
    _SEARCH.parents[1] / "shared" / "search" / "porter.py",
)


def _fingerprint(sources: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for source in sources:
        digest.update(source.read_bytes() if source.exists() else b"(none)")
    return digest.hexdigest()[:16]


# A reading kept by other rules (by an index built before they changed) is read again:
# rebuilding the index (``medcode projections rebuild search``) keeps them by these.
RULES: Final = _fingerprint(_RULES)


class Reading:
    """One text as the ranker reads it: ``stems``, ``nos``, ``spaced`` and ``negated``
    read now; ``sequence``, ``details`` and ``name`` when first asked for.

    Tens of thousands are kept in each serving process, so a reading holds tuples (a
    handful of stems each: a scan is as quick as a set's hash) rather than sets, at a
    third of their size.
    """

    __slots__ = (
        "_details", "_kept", "_name", "_sequence", "negated", "nos", "spaced", "stems", "text",
    )
    stems: tuple[str, ...]
    spaced: str  # " word word ...": whether a word begins with a prefix is one test
    nos: bool  # says "NOS": what its other words mean alone
    negated: frozenset[str]  # words it names only as absent ("without esophagitis")
    _details: tuple[str, ...] | None
    _name: tuple[str, ...] | None
    _sequence: tuple[str, ...] | None
    # As kept, while its name and sequence are not yet asked for: the ranker asks them
    # only of a text holding every word of a query, a few of a search's hundreds of
    # titles, and decoding both for every title cost about 0.9 % of a first-time
    # search's instructions (callgrind's listing of _from_places).
    _kept: list[Any] | None

    def __init__(self, text: str, kept: list[Any] | None = None) -> None:
        """``text`` read now, or as ``kept`` (``Reading.kept``, by these ``RULES``; a list,
        as JSON gives it back, read by the compiled list operations)."""
        self.text = text
        self._name = self._sequence = None
        if kept is not None:
            self.stems = stems = tuple(kept[1])
            self.spaced = str(kept[2])
            self.nos = bool(kept[3])
            self.negated = frozenset(kept[4]) if kept[4] else _NONE
            self._details = _from_places(stems, kept[5])  # asked of every title
            self._kept = kept
            return
        self._kept = None
        found = words(text)
        self.nos = "nos" in found
        self.stems = tuple(dict.fromkeys([stem(w) for w in found]))
        self.spaced = " " + " ".join(found)
        # Rare, so read at once.
        self.negated = negated_of(text) if "without" in found else _NONE
        self._details = None

    def kept(self) -> list[Any]:
        """The reading as JSON keeps it, for ``Reading(text, kept)``: by ``RULES``, which it
        names first, its details, name and sequence read.

        These three are drawn from the stems, so they are kept as the stems' places
        (``_places``): small numbers decode without making strings, and the restored
        reading shares the stems' strings. Decoding and restoring a title took 14 % fewer
        instructions (callgrind, 4,196 of ICD-10-CM's and -PCS's), and the index's document
        store shrank from 23.7 to 20.7 MB. The sequence is kept too: the ranker asks for it
        of every candidate title holding all the query's words, and reading it then cost
        3.5 % of a first-time search's instructions (11,000 a title).
        """
        places = {s: i for i, s in enumerate(self.stems)}
        return [RULES, list(self.stems), self.spaced, self.nos, sorted(self.negated),
                _places(places, self.details), _places(places, self.name),
                _places(places, self.sequence)]

    @property
    def sequence(self) -> tuple[str, ...]:
        """Its stems in order, stopwords out: for phrases (asked of the few texts that
        hold every word of a query)."""
        if self._sequence is None:
            kept = self._kept
            self._sequence = (
                _from_places(self.stems, kept[7]) if kept is not None
                else tuple([stem(w) for w in self.spaced.split() if w not in STOPWORDS])
            )
        return self._sequence

    @property
    def details(self) -> tuple[str, ...]:
        """The details it states (wording.detail_stems)."""
        return self._details if self._details is not None else self._read_bare()[1]

    @property
    def name(self) -> tuple[str, ...]:
        """The text as a name (wording.name_key)."""
        if self._name is None:
            kept = self._kept
            self._name = (
                _from_places(self.stems, kept[6]) if kept is not None else self._read_bare()[0]
            )
        return self._name

    def _read_bare(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Its name and details, read from one tokenisation."""
        tokens = self.spaced.split() if plain(self.text) else bare_tokens(self.text)
        self._name, self._details = found = name_and_details(tokens)
        return found


def _places(places: dict[str, int], part: tuple[str, ...]) -> list[Any]:
    """``part`` as the places of its stems (``places``: each stem's); as itself if one is
    not there."""
    found = [places.get(s, -1) for s in part]
    return list(part) if -1 in found else found


def _from_places(stems: tuple[str, ...], kept: list[Any]) -> tuple[str, ...]:
    """What ``_places`` kept."""
    if kept and type(kept[0]) is int:
        places: list[int] = kept
        return tuple([stems[i] for i in places])
    return tuple(kept)


# How many documents loaded in this process kept no reading by these RULES: from an index
# built before an upgrade changed them, or before titles were kept at all.
_read_again = 0


def restore(text: str, kept: list[Any] | None) -> Reading | None:
    """The reading of ``text`` as kept (``Reading.kept``), if kept by these ``RULES``."""
    if not kept or kept[0] != RULES:
        global _read_again
        _read_again += 1
        return None
    return Reading(text, kept)


def read_again() -> int:
    """How many titles loaded in this process were not kept by these ``RULES``."""
    return _read_again
