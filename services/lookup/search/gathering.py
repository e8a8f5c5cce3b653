"""Gathering lookup's search candidates from a backend: the plans sent for each wording
of a query, and their union, which the engine ranks.

Kept apart from the engine (services.lookup.search.engine), which decides what to ask
for: this is the part that knows what a backend costs, which words to send, in what
order, and when to ask again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final

from services.lookup.search.documents import CodeDocument
from services.lookup.search.matching import Query
from services.lookup.search.spelling import Vocabulary
from services.shared.search.model import Candidates, QueryPlan, SearchIndex

# Words this short are poor prefixes: sent first, so a longer word ends the plan.
_SHORT: Final = 2
# A word in more entries than this ("left", "open", "encounter") costs a backend dearly
# and selects little: it is left to the ranker while the other words find few enough
# entries for the backend to return them all (then every entry with all the words is
# among them). Not ``Final``, unlike the others: unit tests lower it for an index of a
# few entries, and a compiled module reads a ``Final`` as a constant (one look-up in the
# module's dict a plan, otherwise).
_COMMON: int = 5000
# ICD-10-CM's seventh character (the encounter of an injury, a fracture's healing, a
# fetus, a side): its codes are the entry's code padded with "X" to six characters, then
# one more ("S06.0X1" -> "S06.0X1A", "T18.9" -> "T18.9XXA"). The first few by code are
# fetched: the initial encounter "A" (and an open fracture's "B", or the subsequent
# "D"); a query asking for a later one names it, and finds it by its words.
_SEVENTH: Final = 6
_SEVENTH_FIRST: Final = 2
# Injuries and external causes (chapters 19 and 20), and their initial encounters: "A",
# and an open fracture's "B" or "C".
_INJURY_LETTERS: Final = frozenset("STVWXY")
_INITIAL: Final = frozenset("ABC")
_CONDITIONS: Final = "ICD10CM"
# How many entries marked the default for the words ("Stroke NOS") are asked for when a
# backend had more matches than it returned: a word has a few such entries, not a page
# of them. Development sets (2,299 queries), top-five hits: 2,239 with 150, 60 or 30;
# 2,232 with 10, where "haemorrhage NOS" ranks R58 below ten longer texts. Ranked
# candidates per first-time search 152 -> 141; engine alone (four alternated runs) the
# same q/s within this machine's noise, p99 15.0-19.5 -> 12.9-15.1 ms.
_DEFAULTS: Final = 60


@dataclass(frozen=True)
class Found:
    """Candidates gathered from one or more plans."""

    documents: list[CodeDocument]
    total: int  # the largest plan's match count
    counted: QueryPlan | None  # that plan: the entries ``total`` counts
    # Readings naming a condition otherwise than typed, where they found something.
    renamed: tuple[Query, ...] = ()
    # How many of the first documents hold every word and are listed ahead of the rest,
    # when some billable entry does and entries missing words were added (0: all are
    # ranked together).
    complete: int = 0
    # Common words left to the ranker (_selective): the documents need not hold them.
    unsent: frozenset[str] = frozenset()


def plan_order(words: tuple[str, ...]) -> tuple[str, ...]:
    """The words as sent to a backend: very short ones first, as backends treat the last
    word as a prefix too, and "l" or "3a" would match the start of thousands of words."""
    short = tuple(w for w in words if len(w) <= _SHORT)
    return short + tuple(w for w in words if len(w) > _SHORT) if len(short) < len(words) else words


def retrievable(words: tuple[str, ...]) -> tuple[str, ...]:
    """The words worth sending to a backend: one letter ("r" knee, "l" hip) matches half
    the index, so it is left to the ranker, unless the query is nothing else ("n/v")."""
    return tuple(w for w in words if len(w) > 1) or words


def _selective(words: tuple[str, ...], vocabulary: Vocabulary | None) -> tuple[str, ...]:
    """The words without the common ones, if any other is left."""
    if vocabulary is None or len(words) < 2:
        return words
    kept = tuple(w for w in words if vocabulary.entries(w) <= _COMMON)
    return kept or words


async def gather(
    index: SearchIndex,
    plan: QueryPlan,
    wordings: Sequence[tuple[str, ...]],
    vocabulary: Vocabulary | None,
) -> Found:
    """Candidates for each wording; if a backend had more than it returned, also the
    entries marked the default for those words.

    "Stroke NOS" marks I63.9 as what "stroke" alone means; among thousands of matches a
    backend's best few may leave it out, so it is asked for by name.
    """
    full = [replace(plan, words=plan_order(retrievable(w))) for w in wordings]
    plans = [replace(p, words=_selective(p.words, vocabulary)) for p in full]
    # Where leaving a common word out lets through more than a backend returns, ask again
    # with every word: what it found without them is of no use then (QueryPlan.whole).
    sent = [replace(p, whole=p.words != f.words) for p, f in zip(plans, full, strict=True)]
    found = await index.candidates_each(sent)
    again = [i for i, (p, f) in enumerate(zip(sent, found, strict=True))
             if p.whole and f.total > len(f.documents)]
    if again:
        redone = await index.candidates_each([full[i] for i in again])
        for i, result in zip(again, redone, strict=True):
            found[i], plans[i] = result, full[i]
    unsent = frozenset(w for p, f in zip(plans, full, strict=True) for w in f.words
                       if w not in p.words)
    union = replace(_union(plans, found), unsent=unsent)
    if union.total > len(union.documents):
        # (Their count is not the search's: not counted.)
        defaults = [
            replace(p, words=("nos", *p.words), window=min(p.window, _DEFAULTS), count=False)
            for p in plans if "nos" not in p.words
        ]
        more = (await retrieve(index, defaults)).documents
        union = replace(union, documents=extended(union.documents, more))
    return union


def extended(documents: list[CodeDocument], more: Sequence[CodeDocument]) -> list[CodeDocument]:
    """``documents``, then those of ``more`` not among them."""
    seen = {d.doc_id for d in documents}
    return documents + [d for d in more if d.doc_id not in seen]


def _union(plans: Sequence[QueryPlan], found: Sequence[Candidates]) -> Found:
    """The candidates of several plans, once each in plan order, and the largest total
    with its plan."""
    seen: set[str] = set()
    documents: list[CodeDocument] = []
    for candidates in found:
        for doc in candidates.documents:
            if doc.doc_id not in seen:
                seen.add(doc.doc_id)
                documents.append(doc)
    largest = max(range(len(found)), key=lambda i: found[i].total, default=None)
    if largest is None:
        return Found(documents, 0, None)
    return Found(documents, found[largest].total, plans[largest])


def union_found(first: Found, second: Found) -> Found:
    """The candidates of both, and the larger total with its plan."""
    larger = second if second.total > first.total else first
    return Found(extended(first.documents, second.documents), larger.total, larger.counted)


async def retrieve(index: SearchIndex, plans: list[QueryPlan]) -> Found:
    """The union of the plans' candidates."""
    return _union(plans, await index.candidates_each(plans))


async def encounters(
    index: SearchIndex, plan: QueryPlan, entries: Sequence[CodeDocument],
    listed: Sequence[CodeDocument],
) -> list[tuple[CodeDocument, list[CodeDocument]]]:
    """Each of those ``entries`` that needs a seventh character, where no code with one
    is ``listed``, with its first such codes: "S93.401" is no code to report, "S93.401A"
    is; and a backend's best few matches of a sentence may hold the first, whose title
    is shorter, and not the second (development: "i twisted my right ankle ... the
    doctor said its sprained"). Likewise each injury code for a later encounter whose
    initial one is not listed, with its family's first codes."""
    have = {d.compact for d in listed if d.system == _CONDITIONS}
    extended_ = {c[:_SEVENTH] for c in have if len(c) == _SEVENTH + 1}
    needing: dict[str, CodeDocument] = {}
    for doc in entries:
        if doc.system != _CONDITIONS:
            continue
        if not doc.billable and len(doc.compact) <= _SEVENTH:
            key = doc.compact.ljust(_SEVENTH, "X")
            if key not in extended_:
                needing.setdefault(key, doc)
        elif _later_encounter(doc.compact) and doc.compact[:_SEVENTH] + "A" not in have:
            # A sequela or a later encounter without its initial one: the query said
            # neither, or its words would have found it ("Colles' fracture of left
            # radius, sequela" alone, for "broke my left wrist").
            needing.setdefault(doc.compact[:_SEVENTH], doc)
    if not needing:
        return []
    plans = [
        replace(plan, words=(), key=key, match_all=True, window=1 + _SEVENTH_FIRST,
                count=False)
        for key in needing
    ]
    found = await index.candidates_each(plans)
    pairs = []
    for doc, candidates in zip(needing.values(), found, strict=True):
        codes = [d for d in candidates.documents
                 if len(d.compact) == _SEVENTH + 1 and d.compact not in have]
        if codes:
            pairs.append((doc, codes))
    return pairs


def _later_encounter(compact: str) -> bool:
    """Whether an injury's code is for an encounter after the initial one: the seventh
    character of chapters 19 and 20 ("D", "S"; a fracture's "G", "K", "P" and the like),
    not "A" or an open fracture's initial "B" or "C"."""
    return (len(compact) == _SEVENTH + 1 and compact[0] in _INJURY_LETTERS
            and compact[-1] not in _INITIAL)
