"""How one text of an entry (its title or a term) matches one reading of a query: which
of its words the text holds, whether in order, and what details it states beyond them.

Kept apart from the scoring of a whole entry (search.scoring), which weighs these
matches over all of an entry's texts. A search reads each distinct text once per
reading of the query (``Query`` keeps what it read): terms recur across candidates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from services.lookup.search.intent import (
    asks_injury,
    asks_later,
    asks_pregnancy,
    asks_procedure,
    names_injury,
)
from services.lookup.search.readings import Reading
from services.lookup.search.search_readings import read
from services.lookup.search.wording import name_key
from services.shared.search.text import fold, stem, stem_marks

MIN_PREFIX: Final = 3  # a last word this long also matches as the start of a word


@dataclass(frozen=True)
class Query:
    """The words one reading of a query asks for, as stems; the last maybe a prefix."""

    stems: tuple[str, ...]
    prefix: str = ""  # the last word as typed, when it may be the start of a longer word
    name: tuple[str, ...] = ()  # the query as a name (see text.name_key), to recognise one
    procedural: bool = False  # names a procedure done (search.intent)
    surgical: bool = False  # names one surely: not a condition (search.intent)
    injury: bool = False  # names an injury, its cause or an encounter (search.intent)
    injured: bool = False  # names an injury and its cause (search.intent.names_injury)
    pregnancy: bool = False  # names a pregnancy, childbirth or puerperium (search.intent)
    later: bool = False  # names a time after an event: a sequela, a history (search.intent)
    # Where a condition is named otherwise than typed (search.names): which words.
    renamed: range = range(0)
    spelt: bool = False  # notation spelt out as titles say it (wording.spinal_levels)
    # Which words name the diagnosis the query says was made (wording.diagnosis_of), or
    # else the conditions a sentence names (names.Names.named): they count more in its
    # coverage than the signs that led to it and the rest of what is said.
    stress: frozenset[int] = frozenset()
    said: tuple[str, ...] = ()  # the words of ``stems`` as typed (folded)
    # How each text reads for this query: texts recur across candidates.
    texts: dict[str, TextMatch] = field(default_factory=dict, compare=False, repr=False)
    asked: frozenset[str] = field(default=frozenset(), compare=False, repr=False)
    # The words it asks to be absent: those after "without" ("w/o" spelt out).
    absent: frozenset[str] = field(default=frozenset(), compare=False, repr=False)
    begun: str = field(default="", compare=False, repr=False)  # " " + prefix (Reading.spaced)
    # What a text must hold to hold any of its words (text.stem_marks).
    marks: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "asked", frozenset(self.stems))
        marks = dict.fromkeys(m for s in self.stems for m in stem_marks(s))
        object.__setattr__(self, "marks", tuple(marks))
        if "without" in self.stems:
            after = self.stems[self.stems.index("without") + 1 :]
            object.__setattr__(self, "absent", frozenset(after))
        object.__setattr__(self, "begun", " " + self.prefix)

    @classmethod
    def of(
        cls, words_: Sequence[str], *, prefix: bool = False, typed: str = "",
        renamed: range = range(0), spelt: bool = False, stressed: tuple[str, ...] = (),
    ) -> Query:
        ok = prefix and bool(words_) and len(words_[-1]) >= MIN_PREFIX
        name = name_key(typed or " ".join(words_))
        return cls(
            tuple(stem(w) for w in words_), words_[-1] if ok else "", name,
            asks_procedure(words_), asks_procedure(words_, surely=True), asks_injury(words_),
            names_injury(words_), asks_pregnancy(words_), asks_later(words_), renamed, spelt,
            frozenset(i for i, w in enumerate(words_) if w in stressed), tuple(words_),
        )

    def completes(self, held: str) -> bool:
        """Whether a text's word (or its stem) is the last word, completed."""
        if not self.prefix:
            return False
        return held.startswith(self.prefix) or (
            len(held) >= MIN_PREFIX and self.prefix.startswith(held)
        )


class TextMatch:
    """What one text of an entry says of one query: the same in every entry holding it
    (terms recur: a search reads each distinct text once). Never changed once made. A
    plain class, not a dataclass: compiled (make compiled), a dataclass is made by its
    generated __init__ in Python, and a search makes one for each text it reads."""

    def __init__(
        self, found: frozenset[int], completed: bool, extras: int, nos: bool, phrase: bool,
        exact: bool,
    ) -> None:
        self.found = found  # which query words it holds
        self.completed = completed  # the last word only as the start of a longer word
        self.extras = extras  # details it states that the query did not ask for
        self.nos = nos  # says "NOS" (when not the title: what the words mean alone)
        self.phrase = phrase  # every query word, together and in order
        self.exact = exact  # the query, as a name


NOTHING: Final = TextMatch(frozenset(), False, 0, False, False, False)


def match_text(query: Query, text: str) -> TextMatch:
    """What the text says of the query, read once per query (``Query.texts``)."""
    found_read = query.texts.get(text)
    if found_read is None:
        found_read = query.texts[text] = (
            _reading(query, read(text)) if _may_hold(query, text) else NOTHING
        )
    return found_read


def _may_hold(query: Query, text: str) -> bool:
    """Whether a text may hold a word of the query: most texts of a search's candidates
    hold none, and telling so costs a fraction of reading one (readings.Reading)."""
    folded = fold(text)
    return any(mark in folded for mark in query.marks)


def _reading(query: Query, text: Reading) -> TextMatch:
    found, completed = _matches(query, text)
    if not found:
        return NOTHING
    n = len(query.stems)
    whole = len(found) == n
    return TextMatch(
        frozenset(found),
        completed,
        unasked_details(query, query.asked, text),
        not completed and text.nos,
        whole and n > 1 and _in_order(query, text.sequence),
        whole and query.name == text.name,
    )


def _matches(query: Query, text: Reading) -> tuple[set[int], bool]:
    """Which query words a text holds, and whether the last one only as a word's start.

    A word the text names only as absent ("reflux disease without esophagitis") it does
    not hold, unless the query asks for it to be absent too: "gerd w esophagitis" is
    reflux disease with esophagitis.
    """
    held = text.stems
    if query.asked.isdisjoint(held):
        found: set[int] = set()
    else:
        negated = text.negated
        found = {
            i
            for i, word in enumerate(query.stems)
            if word in held
            and (
                not negated or word in query.absent
                or (query.said[i] not in negated and word not in negated)
            )
        }
    last = len(query.stems) - 1
    if query.prefix and last not in found:
        if query.begun in text.spaced and (  # a word of the text begins with the prefix
            not text.negated or query.stems[last] in query.absent
            or _begins_stated(query.prefix, text)
        ):
            found.add(last)
            return found, True
    return found, False


def _begins_stated(prefix: str, text: Reading) -> bool:
    """Whether a word the text does not name as absent begins with the prefix."""
    return any(w.startswith(prefix) and w not in text.negated for w in text.spaced.split())


def _in_order(query: Query, sequence: tuple[str, ...]) -> bool:
    """Whether the query's words appear together and in order in the text."""
    n = len(query.stems)
    for start in range(len(sequence) - n + 1):
        window = sequence[start : start + n]
        if window[:-1] == query.stems[:-1] and (
            window[-1] == query.stems[-1] or query.completes(window[-1])
        ):
            return True
    return False



def unasked_details(query: Query, asked: frozenset[str], text: Reading) -> int:
    """How many details the text states that the query did not ask for."""
    rest = [d for d in text.details if d not in asked]
    begun = query.prefix
    if not begun or not rest:
        return len(rest)
    # Not completing the last word (Query.completes, inlined: this runs for every text).
    return sum(
        1
        for d in rest
        if not (d.startswith(begun) or (len(d) >= MIN_PREFIX and begun.startswith(d)))
    )
