"""Query analysis, spelling correction and the final ranking, shared by every backend.

Backends only retrieve candidates for a ``QueryPlan``; this module decides the order,
from the documents' own text alone (never a backend's score), so embedded and
distributed search answer alike.

Ranking rewards, in order of weight:

1. the code typed (exactly, then as a prefix: "I25.1" lists I25.1 itself first);
2. covering every query word somewhere in the entry (title or searchable terms);
3. one text of the entry, its title or one of its terms, naming what was asked with
   the fewest details left over: "stroke" is I63.9 because its inclusion term is
   "Stroke NOS", not "Family history of stroke";
4. then the most general entry: the one a term marks "NOS" for it ("Stroke NOS" is
   I63.9's; the lookup lexicon marks more the same way), no context the query did not
   ask for ("in pregnancy", "history of"), a code rather than a heading, billable, fewer
   details in the title, ".9" in its code.

Misspelt words are corrected against the words of the index being searched, so the
correction knows every title, inclusion term and synonym the index holds, and nothing
else.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from services.shared.search.model import CodeDocument, QueryPlan
from services.shared.search.text import (
    CONTEXT,
    EVERYDAY,
    MAX_QUERY_WORDS,
    detail_stems,
    fold,
    name_key,
    query_tokens,
    stem,
    stem_sequence,
    stems,
    word_set,
    words,
)

# Anything a coder may type as a code of some system: I21.9, i219, 0DTJ4ZZ, J1100, 99213.
_CODE_LIKE = re.compile(r"[A-Z0-9]{3,7}")
_CODE_NOISE = re.compile(r"[\s.,\-_]+")
# The code set named before the code: "ICD-10 I50.9", "icd10cm: e11.9", "code I10".
_CODE_SET = re.compile(r"^\s*(?:icd[\s\-]*(?:10|9)?(?:[\s\-]*(?:cm|pcs))?|code)\b[\s:#]*")
# An ICD-10-CM code is a letter and a digit, then (after a dot) up to four more.
_CM_DOTTED = re.compile(r"[a-z0-9]\d[a-z0-9]\.[a-z0-9]{1,4}")

# Spelling correction: only words this long are corrected (shorter ones are mostly
# abbreviations), to vocabulary words this similar (rapidfuzz ratio, 0-100).
MIN_CORRECTED = 5
MAX_CORRECTED = 40
_CUTOFF = 75.0
_CUTOFF_OTHER_INITIAL = 85.0  # a first letter mistyped too is rarer: be surer


def _max_edits(word: str) -> int:
    """How many edits a correction of the word may take: two, three from eight letters."""
    return 2 if len(word) < 8 else 3


# Score weights (see the module docstring for their order).
_EXACT_CODE, _CODE_PREFIX = 1000.0, 500.0
_COVERED, _ONE_TEXT, _PHRASE, _EXACT, _TITLE_TEXT = 40.0, 30.0, 3.0, 4.0, 0.5
_COMPLETED = 0.9  # a last word matched as the start of a longer word counts this much
_EXTRA, _TITLE_EXTRA = 2.0, 0.15
_NOS, _CONTEXT, _BILLABLE, _UNSPECIFIED = 3.0, 1.5, 2.0, 0.25
_AGREE, _MAX_AGREE = 0.5, 3  # each further name of the entry that says just what was asked
_HEADING = 30.0  # chapters, blocks and PCS tables are for browsing, not for coding
_HEADINGS = frozenset({"chapter", "block", "section", "body_system", "table"})
_OUTNUMBERED = 10  # a word known by its stem is still corrected to a near word this much commoner
_MIN_PREFIX = 3  # a last word this long also matches as the start of a word


_CONTEXT_STEMS = frozenset(stem(w) for w in CONTEXT)


def code_in(text: str) -> str | None:
    """The compact code a query names, when the whole query reads as one code (typed in
    full-width characters too)."""
    folded = _CODE_SET.sub("", fold(text).strip())
    compact = _CODE_NOISE.sub("", folded).upper()
    if not _CODE_LIKE.fullmatch(compact) or not any(c.isdigit() for c in compact):
        return None
    return _unconfused(compact, _CM_DOTTED.fullmatch(folded.strip(" .")) is not None)


def _unconfused(compact: str, dotted: bool) -> str:
    """A code with the letter O typed for a zero, or a zero for the letter O.

    ICD-10-PCS uses neither O nor I (they read as 0 and 1): seven characters from a digit
    on are such a code ("1OE0XZZ"), as is one from an O then a letter, since an
    ICD-10-CM code has a digit second ("ODTJ4ZZ" is 0DTJ4ZZ). A zero does not begin an
    ICD-10-CM code, nor does an ICD-10-PCS code have a dot: "024.419" is O24.419.
    """
    procedure = len(compact) == 7 and compact[0].isdigit()
    if procedure or (compact[0] == "O" and len(compact) > 1 and compact[1].isalpha()):
        return compact.replace("O", "0").replace("I", "1")
    if dotted and compact[0] == "0":
        return "O" + compact[1:]
    return compact


def analyze(
    text: str,
    *,
    systems: tuple[str, ...] = (),
    billable_only: bool = False,
    chapter: str | None = None,
    window: int = 200,
) -> QueryPlan:
    tokens = tuple(query_tokens(text)[:MAX_QUERY_WORDS])
    return QueryPlan(
        words=tokens,
        code=code_in(text),
        systems=systems,
        billable_only=billable_only,
        chapter=chapter,
        window=window,
    )


class Vocabulary:
    """The words of one index version, with how many entries use each.

    Built once per index version from its documents; answers whether a query word is
    known (as typed, by its stem, or as the start of a word) and corrects the others.
    """

    def __init__(self, texts: Iterable[str]) -> None:
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(set(words(text)))
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
        if as_prefix:
            i = bisect.bisect_left(self._sorted, word)
            return i < len(self._sorted) and self._sorted[i].startswith(word)
        return False

    def correct(self, word: str, *, as_prefix: bool = False) -> str:
        """The word, or the vocabulary word it most likely misspells.

        Short words, words with digits, known words and everyday words are kept. Similar words (by
        rapidfuzz ratio) are candidates; the fewest edits win (a swap of two letters is
        one), then the word more entries use. The same first letter is preferred,
        another one needs a closer match.
        """
        if not MIN_CORRECTED <= len(word) <= MAX_CORRECTED or not word.isalpha():
            return word
        if word in self.counts or word in EVERYDAY:
            return word
        if stem(word) in self.stems:
            # Known by its stem ("sprained"), unless that stem is a rarity and a word an
            # edit or two away is common, or a word that sounds the same is commoner:
            # "migrane" stems like "migrans", means "migraine"; "oesophagitis" like
            # "oesophagus", means "esophagitis".
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
        if self.knows(word, as_prefix=as_prefix):
            return word
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
    """A word as it sounds, more or less: "ae" and "oe" read "e", "ph" "f", a first
    letter silent before another ("pneumonia", "psoriasis", "knee") is left out, as is
    any "h" but a first, and a doubled letter is single. "cirrhosis" and "cirosis" sound
    alike, as do "haemorrhoids" and "hemoroids", "crohn" and "chron", "pneumonia" and
    "neumonia"."""
    word = word.replace("ae", "e").replace("oe", "e").replace("ph", "f")
    word = _SILENT_INITIAL.sub("", word)
    word = word[:1] + word[1:].replace("h", "")
    return _DOUBLED.sub(r"\1", word)


_SILENT_INITIAL = re.compile(r"^(?:p(?=[snt])|[kg](?=n)|w(?=r))")
_DOUBLED = re.compile(r"(.)\1+")


@dataclass(frozen=True)
class Query:
    """The words one reading of a query asks for, as stems; the last maybe a prefix."""

    stems: tuple[str, ...]
    prefix: str = ""  # the last word as typed, when it may be the start of a longer word
    name: tuple[str, ...] = ()  # the query as a name (see text.name_key), to recognise one
    # Whether a text has a word the last word begins: terms recur across candidates.
    _begun: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, words_: Sequence[str], *, prefix: bool = False, typed: str = "") -> Query:
        ok = prefix and bool(words_) and len(words_[-1]) >= _MIN_PREFIX
        name = name_key(typed or " ".join(words_))
        return cls(tuple(stem(w) for w in words_), words_[-1] if ok else "", name)

    def completes(self, held: str) -> bool:
        """Whether a text's word (or its stem) is the last word, completed."""
        if not self.prefix:
            return False
        return held.startswith(self.prefix) or (
            len(held) >= _MIN_PREFIX and self.prefix.startswith(held)
        )


@dataclass(frozen=True)
class Scored:
    document: CodeDocument
    score: float


def rank(
    plan: QueryPlan, candidates: list[CodeDocument], readings: Sequence[Query] = ()
) -> list[CodeDocument]:
    """Order candidates by their best score over the readings of the query.

    ``readings`` default to the plan's own words; the engine passes them corrected,
    without stopwords, and with irregular plurals made singular as another reading.
    """
    queries = list(readings) or [Query.of(plan.words, prefix=True)]
    queries = [q for q in queries if q.stems]
    scored = [Scored(doc, _score(plan, queries, doc)) for doc in candidates]
    scored.sort(key=lambda s: (-s.score, s.document.code, s.document.system))
    return [s.document for s in scored]


def _score(plan: QueryPlan, queries: list[Query], doc: CodeDocument) -> float:
    score = 0.0
    if plan.code:
        if doc.compact == plan.code:
            score += _EXACT_CODE
        elif doc.compact.startswith(plan.code):
            score += _CODE_PREFIX - (len(doc.compact) - len(plan.code))
    if queries:
        score += max(_words_score(query, doc) for query in queries)
    if doc.billable:
        score += _BILLABLE
    if doc.kind in _HEADINGS and not plan.code:
        score -= _HEADING
    # The general entry of a family has ".9" in its code: A54.9, H66.90.
    if doc.code.partition(".")[2].startswith("9"):
        score += _UNSPECIFIED
    return score


def _matches(query: Query, text: str) -> tuple[set[int], bool]:
    """Which query words a text holds, and whether the last one only as a word's start."""
    held = stems(text)
    found = {i for i, word in enumerate(query.stems) if word in held}
    last = len(query.stems) - 1
    if query.prefix and last not in found:
        begun = query._begun.get(text)
        if begun is None:
            begun = query._begun[text] = any(w.startswith(query.prefix) for w in word_set(text))
        if begun:
            found.add(last)
            return found, True
    return found, False


def _words_score(query: Query, doc: CodeDocument) -> float:
    n = len(query.stems)
    asked = set(query.stems)
    covered: set[int] = set()
    completed_only = True  # the last word found only as the start of longer words
    # words covered, -extras, a "NOS" term (says what the words mean alone), is the title
    best: tuple[float, int, bool, bool] = (0.0, 0, False, False)
    phrase = exact = False
    agree = 0  # texts that name the entry with the query's words and no others
    default = 0.0  # share of the query a "NOS" term of the entry says, with nothing else
    for position, text in enumerate((doc.title, *doc.terms)):
        found, completed = _matches(query, text)
        if not found:
            continue
        covered |= found
        completed_only = completed_only and (completed or n - 1 not in found)
        extras = _extras(query, asked, text)
        nos = position > 0 and not completed and "nos" in word_set(text)
        weight = len(found) - (1.0 - _COMPLETED if completed else 0.0)
        best = max(best, (weight, -extras, nos, position == 0))
        agree += len(found) == n and extras == 0
        if nos and extras == 0:
            default = max(default, len(found) / n)
        if len(found) == n:
            phrase = phrase or (n > 1 and _in_order(query, stem_sequence(text)))
            exact = exact or query.name == name_key(text)
    title_extras = _extras(query, asked, doc.title)
    context = sum(1 for d in detail_stems(doc.title) if d in _CONTEXT_STEMS and d not in asked)
    found_all, minus_extras, _, is_title = best
    coverage = len(covered) - (1.0 - _COMPLETED if n - 1 in covered and completed_only else 0.0)
    return (
        _COVERED * coverage / n
        + _ONE_TEXT * found_all / n
        + (_PHRASE if phrase else 0.0)
        + (_EXACT if exact else 0.0)
        + _EXTRA * minus_extras
        + _NOS * default
        + _AGREE * min(max(agree - 1, 0), _MAX_AGREE)
        + (_TITLE_TEXT if is_title else 0.0)
        - _TITLE_EXTRA * title_extras
        - _CONTEXT * context
    )


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


def _extras(query: Query, asked: set[str], text: str) -> int:
    """How many details the text states that the query did not ask for."""
    return sum(1 for d in detail_stems(text) if d not in asked and not query.completes(d))
