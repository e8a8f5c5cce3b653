"""Other names of a condition a query names, from the code set's own "NOS" convention.

An entry's term "X NOS" says what X alone means: that entry. Two such terms on one entry
("Peripheral angiopathy NOS" and "pvd NOS" on I73.9) are two names of one condition, so
a query naming it one way may also be read the other: "dm2 w pvd" is E11.51, whose title
says "peripheral angiopathy". Only a part of a longer query is named again (the whole
query already finds the entry whose names they are: what it adds is the combination).
The engine tries such readings only when no billable entry holds every word as typed,
and the ranker counts one only for a combination code holding all of it, a little less
than the query as typed (search.scoring).

The same names tell which words of a sentence name a condition (``Names.named``): "my
psoriasis keeps flaring up on my elbows" is about the psoriasis, and the engine has
those words count more than the others, as it does a diagnosis a query says was made.
Not the names of symptoms (those only chapter 18's entries are named by): signs and
symptoms are coded when no related diagnosis is (ICD-10-CM's guidelines, I.B.4-5), so
"a bee stung me and my arm swelled up" is the sting, "a painful red lump full of pus
in my armpit" the abscess. Nor "burning", said of a sensation (search.intent), though
it stems as "Burn NOS" does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from services.lookup.lexicon import Lexicon
from services.lookup.search.documents import CodeDocument
from services.lookup.search.english import common_words
from services.lookup.search.intent import SENSATIONS
from services.lookup.search.wording import STOPWORDS
from services.shared.search.text import stem, words

_SYSTEM = "ICD10CM"  # conditions: PCS "NOS" terms name root operations, not synonyms
_SYMPTOMS = "18"  # ICD-10-CM's chapter of symptoms, signs and abnormal findings
_MAX_WORDS = 4  # a name longer than this is a description, not a name
_PER_PART = 3  # other names of one part of a query, the longest (most spelt out) first
_MAX_READINGS = 6  # other readings of one query: each is searched and ranked
_LISTING = frozenset(",()[]")  # "Cardiac, heart or myocardial failure" lists, not names


def _name(term: str) -> tuple[str, ...]:
    """The words of a "X NOS" term's X, stopwords out; () when it is not a plain name."""
    text = term.removesuffix(" NOS")
    if any(c in _LISTING for c in text):
        return ()
    found = tuple(w for w in words(text) if w not in STOPWORDS)
    return found if 0 < len(found) <= _MAX_WORDS and "or" not in words(text) else ()


class Names:
    """The names of each condition the index marks two ways, every name it marks
    (``conditions``), and those only symptoms have (``symptoms``), by their stems."""

    def __init__(
        self, groups: Iterable[Iterable[tuple[str, ...]]],
        conditions: Iterable[tuple[str, ...]] = (),
        symptoms: Iterable[tuple[str, ...]] = (),
    ) -> None:
        self.conditions = frozenset(tuple(stem(w) for w in name) for name in conditions)
        self.symptoms = frozenset(tuple(stem(w) for w in name) for name in symptoms)
        self._others: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
        for group in groups:
            names = list(dict.fromkeys(group))
            for name in names:
                key = tuple(stem(w) for w in name)
                known = self._others.setdefault(key, [])
                known.extend(n for n in names if n != name and n not in known)
        for known in self._others.values():
            known.sort(key=lambda n: (-len(n), n))

    @classmethod
    def of(cls, documents: Iterable[CodeDocument], lexicon: Lexicon | None = None) -> Names:
        """The names the index marks "NOS"; with a ``lexicon``, also its one-word names
        for those entries ("chickenpox" for "Varicella NOS"), which then tell what a
        sentence names and, with the entry's other names, name it otherwise
        (``readings``). Not a common English word, or a form of one: "red" and
        "painful" are said of anything."""
        common = {stem(w) for w in common_words()} if lexicon is not None else set()
        groups = []
        conditions: set[tuple[str, ...]] = set()
        diagnoses: set[tuple[str, ...]] = set()  # names of an entry outside chapter 18
        for doc in documents:
            if doc.system != _SYSTEM:
                continue
            names = {n for t in doc.terms if t.endswith(" NOS") and (n := _name(t))}
            if names and lexicon is not None:
                called = (doc.title, *(" ".join(n) for n in names))
                names |= {n for c in called for s in lexicon.called(c)
                          if len(n := _name(s)) == 1 and stem(n[0]) not in common}
            conditions |= names
            if doc.chapter != _SYMPTOMS:
                diagnoses |= names
            if len(names) > 1:
                groups.append(sorted(names))
        return cls(groups, conditions, conditions - diagnoses)

    def named(self, asked: tuple[str, ...], *, diagnoses: bool = False) -> tuple[str, ...]:
        """The words of ``asked`` that name a condition, longest names first; with
        ``diagnoses``, not those naming a symptom (see the module docstring)."""
        stems = tuple(stem(w) for w in asked)
        found: set[int] = set()
        symptoms: set[int] = set()
        for length in range(min(_MAX_WORDS, len(asked)), 0, -1):
            for start in range(len(asked) - length + 1):
                span = range(start, start + length)
                name = stems[start : start + length]
                if (found.isdisjoint(span) and name in self.conditions
                        and not any(asked[i] in SENSATIONS for i in span)):
                    found.update(span)
                    if name in self.symptoms:
                        symptoms.update(span)
        if diagnoses:
            found -= symptoms
        return tuple(asked[i] for i in sorted(found))

    def __len__(self) -> int:
        return len(self._others)

    def readings(self, asked: tuple[str, ...]) -> list[Renamed]:
        """``asked`` with one part of it named another way, longest parts first."""
        stems = tuple(stem(w) for w in asked)
        found: list[Renamed] = []
        for length in range(min(_MAX_WORDS, len(asked) - 1), 0, -1):
            for start in range(len(asked) - length + 1):
                others = self._others.get(stems[start : start + length], ())
                for other in others[:_PER_PART]:
                    words_ = asked[:start] + other + asked[start + length :]
                    if all(words_ != r.words for r in found):
                        found.append(Renamed(words_, range(start, start + len(other))))
        return found[:_MAX_READINGS]


@dataclass(frozen=True)
class Renamed:
    """A query with one part named another way: its words, and where that name is."""

    words: tuple[str, ...]
    name: range
