"""Spelling correction against the words of the index being searched.

The correction knows every title, inclusion term and synonym the index holds, and
nothing else: a misspelt word becomes the vocabulary word a slip or two away (or one
that sounds the same), preferring the same first letter and the commoner word.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import re
import string
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from services.lookup.search.documents import CodeDocument
from services.lookup.search.english import common_words
from services.lookup.search.wording import EVERYDAY_STEMS, STOPWORDS
from services.shared.search.text import fold, stem, words

# Only words this long are corrected (shorter ones are mostly
# abbreviations), to vocabulary words this similar (rapidfuzz ratio, 0-100).
MIN_CORRECTED = 5
# Words this long that the index knows only as the start of its words are read as those
# words cut short (Vocabulary._completed).
MIN_TRUNCATED = 3
MAX_CORRECTED = 40
_BEGUN = 2  # a last word this short, held by no entry, is still being typed (begun)
_CUTOFF = 75.0
_CUTOFF_OTHER_INITIAL = 85.0  # a first letter mistyped too is rarer: be surer

_JOINED = re.compile(r"([a-z]{2,})(\d{1,2}[a-z]?)")  # "ckd3", "stage3", "ckd3a"
# A word titles write with hyphens ("Pre-existing", "non-ST elevation"): typed as one.
_HYPHENATED = re.compile(r"[a-z]+(?:-[a-z]+)+")
# Noun endings and the adjective endings made of them (Vocabulary.adjective).
_ADJECTIVES = (("osis", ("otic",)), ("us", ("al", "ic")), ("um", ("al",)), ("ia", ("ial", "ic")))
# A word known by its stem, or only as the start of rare words, is still corrected to a
# near word this much commoner.
_OUTNUMBERED = 10
# English's regular endings: a word made of an indexed word's root and one of them is
# spelt right ("fainted" beside "fainting"), whatever a commoner word near it.
_ENDINGS = ("ing", "ed", "es", "s", "d", "ly", "er", "ers")


def joined(word: str) -> bool:
    """Letters run into a number ("ckd3", "ckd3a"): maybe two words (Vocabulary.split)."""
    return _JOINED.fullmatch(word) is not None


def _max_edits(word: str) -> int:
    """How many edits a correction of the word may take: two, three from eight letters."""
    return 2 if len(word) < 8 else 3


class Vocabulary:
    """The words of one index version, with how many entries use each.

    Built once per index version from its documents; answers whether a query word is
    known (as typed, by its stem, or as the start of a word) and corrects the others.
    """

    def __init__(self, texts: Iterable[str]) -> None:
        counts: Counter[str] = Counter()
        self._hyphenated: dict[str, tuple[str, ...]] = {}  # "preexisting": ("pre", "existing")
        for text in texts:
            counts.update(set(words(text)))
            if "-" in text:
                for written in _HYPHENATED.findall(fold(text)):
                    parts = tuple(written.split("-"))
                    self._hyphenated.setdefault("".join(parts), parts)
        self.counts = counts
        self.stem_counts: Counter[str] = Counter()
        for word, count in counts.items():
            self.stem_counts[stem(word)] += count
        self.stems = frozenset(self.stem_counts)
        self._sorted = sorted(counts)
        self._by_initial: dict[str, list[str]] = {}
        for word in self._sorted:
            if word.isalpha() and len(word) >= MIN_CORRECTED - 1:
                self._by_initial.setdefault(word[0], []).append(word)
        self._alphabetic = [w for group in self._by_initial.values() for w in group]
        self._sounded: dict[str, list[str]] = {}
        for word in self._alphabetic:
            for key in {_sound(word), _sound(stem(word))}:
                self._sounded.setdefault(key, []).append(word)

    @classmethod
    def of(cls, documents: Iterable[CodeDocument]) -> Vocabulary:
        return cls(text for doc in documents for text in (doc.title, *doc.terms))

    def __len__(self) -> int:
        return len(self.counts)

    def entries(self, word: str) -> int:
        """About how many entries hold the word (or a word with its stem): an upper bound."""
        return self.stem_counts.get(stem(word), 0)

    def knows(self, word: str, *, as_prefix: bool = False) -> bool:
        if word in self.counts or stem(word) in self.stems:
            return True
        return as_prefix and next(self._beginning(word), None) is not None

    def _beginning(self, word: str) -> Iterator[str]:
        """The words of the index that begin with ``word``, in order."""
        for known in itertools.islice(self._sorted, bisect.bisect_left(self._sorted, word), None):
            if not known.startswith(word):
                return
            yield known

    def split(self, word: str) -> tuple[str, ...]:
        """A word the index does not know, as the words it runs together: letters into a
        number when the index knows the letters ("ckd3" is "ckd 3", "copd2" stays as the
        lexicon has it if it does), or the words of one the index writes with hyphens
        ("preexisting" is "pre existing")."""
        if (parts := self._hyphenated.get(word)) is not None and not self.knows(word):
            return parts
        run = _JOINED.fullmatch(word)
        if run is None or self.knows(word) or not self.knows(run.group(1)):
            return (word,)
        return run.group(1), run.group(2)

    def adjective(self, word: str) -> str:
        """The adjective the index uses for a noun of Latin or Greek form, when it knows
        one: titles say "Streptococcal sepsis" and "viral pneumonia" as often as "sepsis
        due to streptococcus"; "psychosis" is also "psychotic"."""
        for noun, adjectives in _ADJECTIVES:
            if word.endswith(noun) and len(word) - len(noun) >= 3:
                base = word[: -len(noun)]
                for ending in adjectives:
                    if (made := base + ending) in self.counts:
                        return made
        return word

    def correct(self, word: str, *, as_prefix: bool = False) -> str:
        """The word, or the vocabulary word it most likely misspells.

        Words with digits, known words, everyday words, common English words
        (search.english: "greasy" is not "grey") and stopwords ("complains", dropped
        later) are kept. A word of three letters or more the index knows only
        as the start of its words is that word cut short (``_completed``), unless it is
        the last word (``as_prefix``), which search reads as a start anyway. Other
        words under five letters are kept: mostly abbreviations. For the rest, similar
        words (by rapidfuzz ratio) are candidates; the fewest edits win (a swap of two
        letters is one), then the word more entries use. The same first letter is
        preferred, another one needs a closer match.
        """
        if not MIN_TRUNCATED <= len(word) <= MAX_CORRECTED or not word.isalpha():
            return word
        if (word in self.counts or word in STOPWORDS or stem(word) in EVERYDAY_STEMS
                or word in common_words()):
            return word
        if not as_prefix and stem(word) not in self.stems and self.knows(word, as_prefix=True):
            return self._completed(word)
        if len(word) < MIN_CORRECTED:
            return word
        if stem(word) in self.stems:
            # Known by its stem ("sprained"), unless that stem is a rarity and a word an
            # edit or two away is common, or a word that sounds the same is commoner:
            # "migrane" stems like "migrans", means "migraine"; "oesophagitis" like
            # "oesophagus", means "esophagitis". But not a regular form of an indexed
            # word: "fainted" (beside "fainting") is not "failed".
            if self._inflects(word):
                return word
            known = self.stem_counts[stem(word)]
            best = self._closest(
                word, self._by_initial.get(word[0], []), _CUTOFF, other_than=stem(word)
            )
            if (
                best is not None
                and OSA.distance(word, best) <= 2
                and self.counts[best] >= _OUTNUMBERED * known
            ):
                return best
            alike = [w for w in self._sounded.get(_sound(word), ()) if stem(w) != stem(word)]
            if alike:
                best = max(alike, key=lambda w: (self.counts[w], w))
                if self.counts[best] > known:
                    return best
            return word
        if as_prefix and self.knows(word, as_prefix=True):
            return self._unless_rarely_begun(word)
        # Spelt as it sounds: a letter doubled or not, a silent "h", British "ae" and "oe"
        # ("cirosis", "hemorroids", "chrons", "haemorrhage") - however many edits that is.
        sounded = self._sounded.get(_sound(word)) or self._sounded.get(_sound(stem(word)))
        if sounded:
            return max(sounded, key=lambda w: (self.counts[w], w))
        same = self._closest(word, self._by_initial.get(word[0], []), _CUTOFF)
        other = self._closest(word, self._alphabetic, _CUTOFF_OTHER_INITIAL)
        if same is None or other is None:
            best = same or other or word
        else:
            # A first letter left out or mistyped ("neumonia", "soriasis") is rarer than
            # a later slip, so it must take fewer edits, or as many to a far commoner word.
            edits_same, edits_other = OSA.distance(word, same), OSA.distance(word, other)
            best = same
            if edits_other < edits_same or (
                edits_other == edits_same and self.counts[other] >= _OUTNUMBERED * self.counts[same]
            ):
                best = other
        # A correction is a slip or two, not another word: "cardioversion" is not
        # "conversion" (five edits), however alike the two look to a ratio.
        return best if OSA.distance(word, best) <= _max_edits(word) else word

    def _inflects(self, word: str) -> bool:
        """Whether the word is an indexed word's root with a regular ending (_ENDINGS):
        "fainted" is "faint" + "ed" where "fainting" is indexed."""
        for ending in _ENDINGS:
            if word.endswith(ending) and len(root := word[: -len(ending)]) >= 3:
                if any(root + other in self.counts for other in ("", "e", *_ENDINGS)):
                    return True
        return False

    def _completed(self, word: str) -> str:
        """A word cut short, as notes cut them ("tob dep" is tobacco dependence, "exac"
        exacerbation): the commonest word it begins, unless it is a slip of a far
        commoner word (_unless_rarely_begun). The search engine then reads it in the
        context of the query's other words (``completions``): "conc" alone is most
        often "conception", "conc w/o loc" a concussion."""
        kept = self._unless_rarely_begun(word)
        if kept != word:
            return kept
        return self.completions(word, 1)[0]

    def begun(self, word: str, *, held: bool = False) -> str:
        """A last word of two letters that no entry holds, nor a stopword ("open fr",
        "in right kn"), read as a word still being typed: the commonest longer word it
        begins, or the word. The engine reads it in the context of the query's other
        words (as typed where no entry holds any word it begins with them): as a start
        alone it would match thousands of words in a backend, and the ranker does not
        read so short a start as one. One that entries hold is an abbreviation ("bilat
        pe"), unless ``held``: the engine says so of one typed into a search box that no
        entry holds with the other words ("paranoid pe")."""
        if (len(word) != _BEGUN or not word.isalpha() or (word in self.counts and not held)
                or word in STOPWORDS):
            return word
        return next((w for w in self.completions(word, 2, content=True) if w != word), word)

    def completions(self, word: str, most: int, *, content: bool = False) -> list[str]:
        """The ``most`` commonest words the word begins, commonest first; with
        ``content``, only words that say something (no stopwords): a word being typed
        among others is not "for" or "with", which search leaves out."""
        begun = self._beginning(word)
        if content:
            begun = (w for w in begun if w not in STOPWORDS)
        return heapq.nsmallest(most, begun, key=lambda w: (-self.counts[w], w))

    def _unless_rarely_begun(self, word: str) -> str:
        """A word known only as the start of words, kept as typed, unless those words are
        rarities and a far commoner word is the word with a letter left out: "cancr"
        begins "cancrum" and means "cancer". Only a letter left out: a last word is often
        still being typed, and "trachei" (tracheitis) is not a slip for "trachea"."""
        whole = (word[:i] + letter + word[i:] for i in range(len(word))
                 for letter in string.ascii_lowercase)
        best = max(whole, key=lambda w: (self.counts.get(w, 0), w))
        most = self.counts.get(best, 0)
        begun = 0
        for known in self._beginning(word):
            begun += self.counts[known]
            if begun * _OUTNUMBERED > most:
                return word
        return best

    def _closest(
        self, word: str, choices: Sequence[str], cutoff: float, other_than: str = ""
    ) -> str | None:
        found = process.extract(
            word,
            choices,
            scorer=fuzz.ratio,
            score_cutoff=cutoff,
            limit=8,
            processor=None,
        )
        found = [f for f in found if not other_than or stem(f[0]) != other_than]
        if not found:
            return None
        return min(
            (choice for choice, _, _ in found),
            key=lambda c: (OSA.distance(word, c), -self.counts[c], c),
        )


def _sound(word: str) -> str:
    """A word as it sounds, more or less: "ae" and "oe" read "e", "ph" "f", "tion" and
    "sion" "shun", a first letter silent before another ("pneumonia", "psoriasis",
    "knee") is left out, as is any "h" but a first, and a doubled letter is single.
    "cirrhosis" and "cirosis" sound alike, as do "haemorrhoids" and "hemoroids", "crohn"
    and "chron", "pneumonia" and "neumonia", "infection" and "infecshun"."""
    word = word.replace("ae", "e").replace("oe", "e").replace("ph", "f")
    word = word.replace("tion", "shun").replace("sion", "shun")
    word = _SILENT_INITIAL.sub("", word)
    word = word[:1] + word[1:].replace("h", "")
    return _DOUBLED.sub(r"\1", word)


_SILENT_INITIAL = re.compile(r"^(?:p(?=[snt])|[kg](?=n)|w(?=r))")
_DOUBLED = re.compile(r"(.)\1+")
