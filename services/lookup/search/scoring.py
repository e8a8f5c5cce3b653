"""The final ranking of lookup's search, the same whatever the backend.

Backends only retrieve candidates for a ``QueryPlan``; this module decides the order,
from the documents' own text alone (never a backend's score), so embedded and
distributed search answer alike.

Ranking rewards, in order of weight:

1. the code typed (exactly, then as a prefix: "I25.1" lists I25.1 itself first);
2. covering every query word somewhere in the entry (title or searchable terms), the
   words of a diagnosis the query says was made counting more ("... and the doctor said
   it's croup");
3. one text of the entry, its title or one of its terms, naming what was asked with
   the fewest details left over: "stroke" is I63.9 because its inclusion term is
   "Stroke NOS", not "Family history of stroke";
4. then the most general entry: the one a term marks "NOS" for it ("Stroke NOS" is
   I63.9's; the lookup lexicon marks more the same way), no context the query did not
   ask for ("in pregnancy", "history of"), a code rather than a heading, billable, fewer
   details in the title, ".9" in its code.

Each reading of the query is scored and the best counts. Where no entry holds every
word, the engine adds readings naming a condition otherwise (search.names): they count
a little less, and only for a combination code holding all of such a reading. Readings
with spinal levels spelt out (wording.spinal_levels) also count a little less.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from services.lookup.search.documents import CodeDocument
from services.lookup.search.intent import (
    asks_injury,
    asks_later,
    asks_pregnancy,
    asks_procedure,
    names_injury,
)
from services.lookup.search.readings import Reading, read
from services.lookup.search.wording import (
    CONTEXT,
    name_key,
)
from services.shared.search.model import QueryPlan
from services.shared.search.text import fold, stem, stem_marks

# Score weights (see the module docstring for their order).
_EXACT_CODE, _CODE_PREFIX = 1000.0, 500.0
_COVERED, _ONE_TEXT, _PHRASE, _EXACT, _TITLE_TEXT = 40.0, 30.0, 3.0, 4.0, 0.5
_COMPLETED = 0.9  # a last word matched as the start of a longer word counts this much
_EXTRA, _TITLE_EXTRA = 2.0, 0.15
_NOS, _CONTEXT, _BILLABLE, _UNSPECIFIED = 3.0, 1.5, 2.0, 0.25
_AGREE, _MAX_AGREE = 0.5, 3  # each further name of the entry that says just what was asked
_HEADING = 30.0  # chapters, blocks and PCS tables are for browsing, not for coding
_HEADINGS = frozenset({"chapter", "block", "section", "body_system", "table"})
# A procedure code for a query naming no procedure (search.intent): "my knee gives out"
# is not a knee resection; and a condition for one naming a procedure. A tie-breaker:
# less than one word's coverage.
_NOT_A_PROCEDURE = 4.0
_PROCEDURE_SYSTEMS = frozenset({"ICD10PCS"})
_CONDITION_SYSTEMS = frozenset({"ICD10CM"})
# An injury or its external cause for a query naming none (search.intent): "a rash on my
# arms that itches" is not an abrasion of the arm, though "road rash" names one and the
# title says "arm". Every body part has its injuries, so they hold the body part of any
# sentence: this outweighs one word's coverage in a query of four words or more
# (_COVERED / 4) and is less than one in shorter ones (development sentences 0.89 ->
# 0.91 and procedures 0.91 -> 0.93 against 4.0, which changed nothing).
_NOT_AN_INJURY = 12.0
_INJURY_CHAPTERS = frozenset({"19", "20"})  # ICD-10-CM's injuries and external causes
# An external cause for a query naming the injury too (search.intent.names_injury):
# the cause is coded after the injury, never first. As firm as the above: "fell off a
# ladder and broke my wrist" names the fall in one text ("fell off ladder") and the
# fracture in two.
_CAUSE_AFTER_INJURY = 12.0
_CAUSES_CHAPTER = "20"
# Pregnancy, childbirth and the puerperium for a query naming none (search.intent), as
# firmly as an injury for a query naming none.
_NOT_A_PREGNANCY = 12.0
_PREGNANCY_CHAPTER = "15"
# What came of an event ("Hemiplegia and hemiparesis following cerebral infarction") for
# a query naming no time after one (search.intent.asks_later), as firmly.
_NOT_LATER = 12.0
_FOLLOWING = " following "
_MIN_PREFIX = 3  # a last word this long also matches as the start of a word
# A reading naming a condition otherwise than typed (search.names) counts this much less:
# it wins only where it covers more of the query than the words as typed.
_RENAMED = 6.0
# So does a reading with notation spelt out ("l5": "fifth lumbar vertebra"): where the
# words as typed are all found ("t5 t6": "fracture of T5-T6 vertebra"), they win.
_SPELT = 3.0
# How much more a word of the diagnosis a query says was made counts in its coverage
# ("... and the ct showed a stroke": the stroke, not the weakness on one side).
_STRESS = 2.0
_COMBINATION = re.compile(r"\b(?:with|due to)\b", re.IGNORECASE)


_CONTEXT_STEMS = frozenset(stem(w) for w in CONTEXT)


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
    _read: dict[str, _Read] = field(default_factory=dict, compare=False, repr=False)
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
        ok = prefix and bool(words_) and len(words_[-1]) >= _MIN_PREFIX
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
            len(held) >= _MIN_PREFIX and self.prefix.startswith(held)
        )


class Scored:
    """A candidate and its score. A plain class, not a dataclass: compiled (make
    compiled), a dataclass is made by its generated __init__ in Python, and one is made
    for each candidate of every search."""

    def __init__(self, document: CodeDocument, score: float) -> None:
        self.document = document
        self.score = score


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
    if plan.key:
        if doc.compact == plan.key:
            score += _EXACT_CODE
        elif doc.compact.startswith(plan.key):
            score += _CODE_PREFIX - (len(doc.compact) - len(plan.key))
    if queries:
        score += max(
            _words_score(query, doc) - (_RENAMED if query.renamed else 0.0)
            - (_SPELT if query.spelt else 0.0)
            for query in queries
        )
    if doc.billable:
        score += _BILLABLE
    if doc.kind in _HEADINGS and not plan.key:
        score -= _HEADING
    if queries:
        score -= _held_back(plan, queries[0], doc)
    # The general entry of a family has ".9" in its code: A54.9, H66.90.
    if doc.code.partition(".")[2].startswith("9"):
        score += _UNSPECIFIED
    return score


def held_back(plan: QueryPlan, query: Query, doc: CodeDocument) -> bool:
    """Whether ranking holds the entry back for what the query asks (``_held_back``)."""
    return _held_back(plan, query, doc) > 0.0


def _held_back(plan: QueryPlan, query: Query, doc: CodeDocument) -> float:
    """How far an entry is held back for being of a kind the query does not ask for
    (search.intent): a procedure, an injury, a pregnancy, what came of an event; or a
    condition for a query naming a procedure done ("orif left clavicle fracture" is the
    reduction, not the fracture), and an external cause for one naming its injury."""
    if plan.key:
        return 0.0
    back = 0.0
    if doc.system in _PROCEDURE_SYSTEMS and not query.procedural:
        back += _NOT_A_PROCEDURE
    elif doc.system in _CONDITION_SYSTEMS and query.surgical:
        back += _NOT_A_PROCEDURE
    if doc.system in _CONDITION_SYSTEMS and doc.chapter in _INJURY_CHAPTERS:
        if not query.injury:
            back += _NOT_AN_INJURY
        elif doc.chapter == _CAUSES_CHAPTER and query.injured:
            back += _CAUSE_AFTER_INJURY
    if (doc.system in _CONDITION_SYSTEMS and doc.chapter == _PREGNANCY_CHAPTER
            and not query.pregnancy):
        back += _NOT_A_PREGNANCY
    if not query.later and _FOLLOWING in doc.title:
        back += _NOT_LATER
    return back


class _Read:
    """What one text of an entry says of one query: the same in every entry holding it
    (terms recur: a search reads each distinct text once). Never changed once made; a
    plain class for the reason ``Scored`` is."""

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


_NOTHING = _Read(frozenset(), False, 0, False, False, False)


def _read(query: Query, text: str) -> _Read:
    found_read = query._read.get(text)
    if found_read is None:
        found_read = query._read[text] = (
            _reading(query, read(text)) if _may_hold(query, text) else _NOTHING
        )
    return found_read


def _may_hold(query: Query, text: str) -> bool:
    """Whether a text may hold a word of the query: most texts of a search's candidates
    hold none, and telling so costs a fraction of reading one (readings.Reading)."""
    folded = fold(text)
    return any(mark in folded for mark in query.marks)


def _reading(query: Query, text: Reading) -> _Read:
    found, completed = _matches(query, text)
    if not found:
        return _NOTHING
    n = len(query.stems)
    whole = len(found) == n
    return _Read(
        frozenset(found),
        completed,
        _extras(query, query.asked, text),
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


def _words_score(query: Query, doc: CodeDocument) -> float:
    n = len(query.stems)
    covered: set[int] = set()
    completed_only = True  # the last word found only as the start of longer words
    # words covered, -extras, a "NOS" term (says what the words mean alone), is the title
    best: tuple[float, int, bool, bool] = (0.0, 0, False, False)
    phrase = exact = False
    agree = 0  # texts that name the entry with the query's words and no others
    default = 0.0  # share of the query a "NOS" term of the entry says, with nothing else
    known = query._read  # (a look-up here, not a call: this runs for every text)
    title = known.get(doc.title) or _read(query, doc.title)
    for position, text in enumerate((doc.title, *doc.terms)):
        held = title if position == 0 else known.get(text) or _read(query, text)
        found = held.found
        if not found:
            continue
        completed, extras = held.completed, held.extras
        covered |= found
        completed_only = completed_only and (completed or n - 1 not in found)
        nos = position > 0 and held.nos
        weight = len(found) - (1.0 - _COMPLETED if completed else 0.0)
        best = max(best, (weight, -extras, nos, position == 0))
        agree += len(found) == n and extras == 0
        if nos and extras == 0:
            default = max(default, len(found) / n)
        phrase = phrase or held.phrase
        exact = exact or held.exact
    title_reading = read(doc.title)
    title_extras = title.extras if title.found else _extras(query, query.asked, title_reading)
    context = sum(
        1 for d in title_reading.details if d in _CONTEXT_STEMS and d not in query.asked
    )
    if query.renamed and not _combines(query, doc, len(covered) == n):
        return 0.0
    found_all, minus_extras, _, is_title = best
    coverage = len(covered) - (1.0 - _COMPLETED if n - 1 in covered and completed_only else 0.0)
    stress = query.stress
    if stress:  # each word of the diagnosis made counts as 1 + _STRESS words
        coverage += _STRESS * len(covered & stress)
    return (
        _COVERED * coverage / (n + _STRESS * len(stress))
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


def holds(doc: CodeDocument, words_: Sequence[str], *, prefix: str = "") -> bool:
    """Whether the entry's texts hold every word (``missing``)."""
    return missing(doc, words_, prefix=prefix) == 0


def missing(doc: CodeDocument, words_: Sequence[str], *, prefix: str = "") -> int:
    """How many of the words the entry's texts do not hold, by stem, each wherever it
    is; ``prefix`` (a last word still being typed) also as the start of a word."""
    needed = {stem(w) for w in words_ if w != prefix}
    begun = " " + prefix
    started = not prefix
    for text in (doc.title, *doc.terms):
        reading = read(text)
        needed.difference_update(reading.stems)
        started = started or begun in reading.spaced
        if started and not needed:
            return 0
    return len(needed) + (not started)


def renamed_match(query: Query, doc: CodeDocument) -> bool:
    """Whether a query naming a condition otherwise finds this entry (``_combines``)."""
    return _words_score(query, doc) > 0.0


def _combines(query: Query, doc: CodeDocument, covered: bool) -> bool:
    """Whether a query naming a condition otherwise (search.names) finds what the words
    as typed missed: a combination code ("A with B", "A due to B") holding all of it,
    the other name as written. Not any entry that happens to hold both names ("sore
    throat and fever" is J02.9, not the syndrome whose name lists pharyngitis and
    fever), nor one whose words are strewn ("uti with blood" is not a blood infection).
    """
    if not covered or not _COMBINATION.search(doc.title):
        return False
    name = query.stems[query.renamed.start : query.renamed.stop]
    return any(_holds(read(text).sequence, name) for text in (doc.title, *doc.terms))


def _holds(sequence: tuple[str, ...], part: tuple[str, ...]) -> bool:
    n = len(part)
    return any(sequence[i : i + n] == part for i in range(len(sequence) - n + 1))


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


def _extras(query: Query, asked: frozenset[str], text: Reading) -> int:
    """How many details the text states that the query did not ask for."""
    rest = [d for d in text.details if d not in asked]
    begun = query.prefix
    if not begun or not rest:
        return len(rest)
    # Not completing the last word (Query.completes, inlined: this runs for every text).
    return sum(
        1
        for d in rest
        if not (d.startswith(begun) or (len(d) >= _MIN_PREFIX and begun.startswith(d)))
    )
