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
from typing import Final

from services.lookup.search.documents import CodeDocument
from services.lookup.search.matching import Query, match_text, unasked_details
from services.lookup.search.search_readings import read
from services.lookup.search.wording import CONTEXT
from services.shared.search.model import QueryPlan
from services.shared.search.text import stem

# Score weights (see the module docstring for their order). Final, each on its own: the
# compiled ranker reads a Final as a constant, anything else module-level from the
# module's dict at each use. With the other constants here and in matching, intent,
# documents and search_readings made Final, a first-time search ran 4.2 % fewer
# instructions (bench/instructions.py: 23.88M -> 22.88M); those of every other compiled
# module followed (tests/unit/test_compiled_search.py keeps them Final).
_EXACT_CODE: Final = 1000.0
_CODE_PREFIX: Final = 500.0
_COVERED: Final = 40.0
_ONE_TEXT: Final = 30.0
_PHRASE: Final = 3.0
_EXACT: Final = 4.0
_TITLE_TEXT: Final = 0.5
_COMPLETED: Final = 0.9  # a last word matched as the start of a longer word counts this much
_EXTRA: Final = 2.0
_TITLE_EXTRA: Final = 0.15
_NOS: Final = 3.0
_CONTEXT: Final = 1.5
_BILLABLE: Final = 2.0
_UNSPECIFIED: Final = 0.25
_AGREE: Final = 0.5  # each further name of the entry that says just what was asked
_MAX_AGREE: Final = 3
_HEADING: Final = 30.0  # chapters, blocks and PCS tables are for browsing, not for coding
_HEADINGS: Final = frozenset({"chapter", "block", "section", "body_system", "table"})
# A procedure code for a query naming no procedure (search.intent): "my knee gives out"
# is not a knee resection; and a condition for one naming a procedure. A tie-breaker:
# less than one word's coverage.
_NOT_A_PROCEDURE: Final = 4.0
_PROCEDURE_SYSTEMS: Final = frozenset({"ICD10PCS"})
_CONDITION_SYSTEMS: Final = frozenset({"ICD10CM"})
# An injury or its external cause for a query naming none (search.intent): "a rash on my
# arms that itches" is not an abrasion of the arm, though "road rash" names one and the
# title says "arm". Every body part has its injuries, so they hold the body part of any
# sentence: this outweighs one word's coverage in a query of four words or more
# (_COVERED / 4) and is less than one in shorter ones (development sentences 0.89 ->
# 0.91 and procedures 0.91 -> 0.93 against 4.0, which changed nothing).
_NOT_AN_INJURY: Final = 12.0
_INJURY_CHAPTERS: Final = frozenset({"19", "20"})  # ICD-10-CM's injuries and external causes
# An external cause for a query naming the injury too (search.intent.names_injury):
# the cause is coded after the injury, never first. As firm as the above: "fell off a
# ladder and broke my wrist" names the fall in one text ("fell off ladder") and the
# fracture in two.
_CAUSE_AFTER_INJURY: Final = 12.0
_CAUSES_CHAPTER: Final = "20"
# Pregnancy, childbirth and the puerperium for a query naming none (search.intent), as
# firmly as an injury for a query naming none.
_NOT_A_PREGNANCY: Final = 12.0
_PREGNANCY_CHAPTER: Final = "15"
# What came of an event ("Hemiplegia and hemiparesis following cerebral infarction") for
# a query naming no time after one (search.intent.asks_later), as firmly.
_NOT_LATER: Final = 12.0
_FOLLOWING: Final = " following "
# A reading naming a condition otherwise than typed (search.names) counts this much less:
# it wins only where it covers more of the query than the words as typed.
_RENAMED: Final = 6.0
# So does a reading with notation spelt out ("l5": "fifth lumbar vertebra"): where the
# words as typed are all found ("t5 t6": "fracture of T5-T6 vertebra"), they win.
_SPELT: Final = 3.0
# How much more a word of the diagnosis a query says was made counts in its coverage
# ("... and the ct showed a stroke": the stroke, not the weakness on one side).
_STRESS: Final = 2.0
_COMBINATION: Final = re.compile(r"\b(?:with|due to)\b", re.IGNORECASE)


_CONTEXT_STEMS: Final = frozenset(stem(w) for w in CONTEXT)



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



def _words_score(query: Query, doc: CodeDocument) -> float:
    n = len(query.stems)
    covered: set[int] = set()
    completed_only = True  # the last word found only as the start of longer words
    # The best text: the most words covered, then the fewest extras, then a "NOS" term
    # (says what the words mean alone), then the title (``_better``).
    best_weight, best_minus_extras, best_nos, best_is_title = 0.0, 0, False, False
    phrase = exact = False
    agree = 0  # texts that name the entry with the query's words and no others
    default = 0.0  # share of the query a "NOS" term of the entry says, with nothing else
    known = query.texts  # (a look-up here, not a call: this runs for every text)
    title = known.get(doc.title) or match_text(query, doc.title)
    for position, text in enumerate((doc.title, *doc.terms)):
        held = title if position == 0 else known.get(text) or match_text(query, text)
        found = held.found
        if not found:
            continue
        completed, extras = held.completed, held.extras
        covered |= found
        completed_only = completed_only and (completed or n - 1 not in found)
        nos = position > 0 and held.nos
        weight = float(len(found)) - (1.0 - _COMPLETED if completed else 0.0)
        if _better(weight, -extras, nos, position == 0,
                   best_weight, best_minus_extras, best_nos, best_is_title):
            best_weight, best_minus_extras = weight, -extras
            best_nos, best_is_title = nos, position == 0
        agree += len(found) == n and extras == 0
        if nos and extras == 0:
            default = max(default, len(found) / n)
        phrase = phrase or held.phrase
        exact = exact or held.exact
    title_reading = read(doc.title)
    title_extras = (
        title.extras if title.found else unasked_details(query, query.asked, title_reading)
    )
    context = sum(
        1 for d in title_reading.details if d in _CONTEXT_STEMS and d not in query.asked
    )
    if query.renamed and not _combines(query, doc, len(covered) == n):
        return 0.0
    coverage = float(len(covered)) - (
        1.0 - _COMPLETED if n - 1 in covered and completed_only else 0.0
    )
    stress = query.stress
    if stress:  # each word of the diagnosis made counts as 1 + _STRESS words
        coverage += _STRESS * len(covered & stress)
    return (
        _COVERED * coverage / (n + _STRESS * len(stress))
        + _ONE_TEXT * best_weight / n
        + (_PHRASE if phrase else 0.0)
        + (_EXACT if exact else 0.0)
        + _EXTRA * best_minus_extras
        + _NOS * default
        + _AGREE * min(max(agree - 1, 0), _MAX_AGREE)
        + (_TITLE_TEXT if best_is_title else 0.0)
        - _TITLE_EXTRA * title_extras
        - _CONTEXT * context
    )


def _better(
    weight: float, minus_extras: int, nos: bool, is_title: bool,
    best_weight: float, best_minus_extras: int, best_nos: bool, best_is_title: bool,
) -> bool:
    """Whether a text beats the best so far, compared in that order. Compiled, as C
    values: compared as tuples, each text made a tuple, a float and two ints as
    objects (1.3 % of a first-time search's instructions, bench/instructions.py)."""
    if weight != best_weight:
        return weight > best_weight
    if minus_extras != best_minus_extras:
        return minus_extras > best_minus_extras
    if nos != best_nos:
        return nos
    return is_title and not best_is_title


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


