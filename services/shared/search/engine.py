"""One search, whatever the backend: analyse, correct, retrieve candidates, rank, page.

What people type reaches the codes through the index itself: the lookup service's
projection writes lay words, abbreviations and procedure names into each entry's terms
(services/lookup/lexicon.py), so every caller and both backends search them alike. This
module adds what only the query can tell: misspellings (corrected against the words of
the live index), stopwords, and which words are worth a backend's time.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import combinations

from services.shared.search.model import (
    Candidates,
    CodeDocument,
    QueryPlan,
    SearchCatalog,
    SearchIndex,
)
from services.shared.search.ranking import (
    MAX_CORRECTED,
    MIN_CORRECTED,
    Query,
    Vocabulary,
    analyze,
    rank,
)
from services.shared.search.text import IRREGULAR, query_words

log = logging.getLogger(__name__)

MAX_WINDOW = 1000
_RECHECK_SECONDS = 30.0  # how often a cached vocabulary is checked against its index
_SHORT = 2  # words this short are poor prefixes: sent first, so a longer word ends the plan
_FEW = 1  # with fewer billable entries than this having every word, look at those missing one
_MAX_RELAXED = 6
# A word in more entries than this ("left", "open", "encounter") costs a backend dearly
# and selects little: it is left to the ranker while the other words find few enough
# entries for the backend to return them all (then every entry with all the words is
# among them).
_COMMON = 5000


@dataclass(frozen=True)
class Results:
    documents: list[CodeDocument]
    total: int
    asked: tuple[str, ...] = ()  # the words searched for, after spelling correction


@dataclass
class _Cached:
    vocabulary: Vocabulary
    count: int
    checked: float


class Vocabularies:
    """The vocabulary of each index version, built on first need and kept while current.

    Kept per catalogue and index name, so a rebuild's new version gets its own. A version
    still being written (the live one in embedded mode) is re-read when its document
    count has changed, checked at most every 30 seconds: no search pays for more than a
    ``count``, but the first one on a version reads its documents once.
    """

    def __init__(self, recheck_seconds: float = _RECHECK_SECONDS) -> None:
        self._cached: weakref.WeakKeyDictionary[SearchCatalog, dict[str, _Cached]] = (
            weakref.WeakKeyDictionary()
        )
        self._locks: weakref.WeakKeyDictionary[SearchCatalog, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._recheck = recheck_seconds

    def _fresh(self, versions: dict[str, _Cached], name: str) -> Vocabulary | None:
        cached = versions.get(name)
        if cached is not None and time.monotonic() - cached.checked < self._recheck:
            return cached.vocabulary
        return None

    async def of(self, catalog: SearchCatalog, index: SearchIndex) -> Vocabulary:
        versions = self._cached.setdefault(catalog, {})
        if (vocabulary := self._fresh(versions, index.name)) is not None:
            return vocabulary
        async with self._locks.setdefault(catalog, asyncio.Lock()):
            if (vocabulary := self._fresh(versions, index.name)) is not None:
                return vocabulary
            cached = versions.get(index.name)
            try:
                count = await index.count()
                if cached is None or cached.count != count:
                    documents = await index.documents()
                    vocabulary = await asyncio.to_thread(Vocabulary.of, documents)
                    cached = _Cached(vocabulary, len(documents), 0.0)
            except Exception:  # a version that a rebuild has just dropped, say
                # Searches go on through the live version (the backend sees to that);
                # they only miss spelling correction until the next one reads it.
                log.warning("no vocabulary from %s", index.name, exc_info=True)
                newest = next(reversed(versions.values()), None)
                return newest.vocabulary if newest else Vocabulary(())
            if versions.get(index.name) is not cached:
                # Versions come and go with rebuilds: keep the newest two.
                for stale in list(versions)[:-1]:
                    del versions[stale]
                versions[index.name] = cached
            cached.checked = time.monotonic()
            return cached.vocabulary


VOCABULARIES = Vocabularies()


def _needs_vocabulary(words: tuple[str, ...]) -> bool:
    return any(MIN_CORRECTED <= len(w) <= MAX_CORRECTED and w.isalpha() for w in words)


def _plan_order(words: tuple[str, ...]) -> tuple[str, ...]:
    """The words as sent to a backend: very short ones first, as backends treat the last
    word as a prefix too, and "l" or "3a" would match the start of thousands of words."""
    short = tuple(w for w in words if len(w) <= _SHORT)
    return short + tuple(w for w in words if len(w) > _SHORT) if len(short) < len(words) else words


def _retrievable(words: tuple[str, ...]) -> tuple[str, ...]:
    """The words worth sending to a backend: one letter ("r" knee, "l" hip) matches half
    the index, so it is left to the ranker, unless the query is nothing else ("n/v")."""
    return tuple(w for w in words if len(w) > 1) or words


def _selective(words: tuple[str, ...], vocabulary: Vocabulary | None) -> tuple[str, ...]:
    """The words without the common ones, if any other is left."""
    if vocabulary is None or len(words) < 2:
        return words
    kept = tuple(w for w in words if vocabulary.entries(w) <= _COMMON)
    return kept or words


async def _gather(
    index: SearchIndex,
    plan: QueryPlan,
    wordings: Sequence[tuple[str, ...]],
    vocabulary: Vocabulary | None,
) -> tuple[list[CodeDocument], int]:
    """Candidates for each wording; if a backend had more than it returned, also the
    entries marked the default for those words.

    "Stroke NOS" marks I63.9 as what "stroke" alone means; among thousands of matches a
    backend's best few may leave it out, so it is asked for by name.
    """
    full = [replace(plan, words=_plan_order(_retrievable(w))) for w in wordings]
    plans = [replace(p, words=_selective(p.words, vocabulary)) for p in full]
    found = await asyncio.gather(*(index.candidates(p) for p in plans))
    # Where leaving a common word out let through more than a backend returns, ask again
    # with every word.
    again = [
        i
        for i, (p, f) in enumerate(zip(plans, found, strict=True))
        if p.words != full[i].words and f.total > len(f.documents)
    ]
    if again:
        redone = await asyncio.gather(*(index.candidates(full[i]) for i in again))
        for i, result in zip(again, redone, strict=True):
            found[i], plans[i] = result, full[i]
    documents, total = _union(found)
    if total > len(documents):
        defaults = [replace(p, words=("nos", *p.words)) for p in plans if "nos" not in p.words]
        more, _ = await _retrieve(index, defaults)
        seen = {d.doc_id for d in documents}
        documents += [d for d in more if d.doc_id not in seen]
    return documents, total


def _union(found: Sequence[Candidates]) -> tuple[list[CodeDocument], int]:
    """The candidates of several plans, once each in plan order, and the largest total."""
    seen: set[str] = set()
    documents: list[CodeDocument] = []
    for candidates in found:
        for doc in candidates.documents:
            if doc.doc_id not in seen:
                seen.add(doc.doc_id)
                documents.append(doc)
    return documents, max((c.total for c in found), default=0)


async def _retrieve(index: SearchIndex, plans: list[QueryPlan]) -> tuple[list[CodeDocument], int]:
    """The union of the plans' candidates."""
    return _union(await asyncio.gather(*(index.candidates(p) for p in plans)))


async def search(
    catalog: SearchCatalog,
    text: str,
    *,
    systems: tuple[str, ...] = (),
    billable_only: bool = False,
    chapter: str | None = None,
    offset: int = 0,
    limit: int = 10,
) -> Results:
    """Rank the best candidates and return one page of them.

    Stopwords are dropped and misspelt words corrected against the index's own
    vocabulary. Every word must match when some billable entry has them all; otherwise
    entries missing one word are added, and failing that any word may match, so a query
    with a stray word still finds something useful.
    """
    window = min(max(200, offset + limit + 50), MAX_WINDOW)
    plan = analyze(
        text, systems=systems, billable_only=billable_only, chapter=chapter, window=window
    )
    if not plan.words and not plan.code:
        return Results([], 0)
    index = await catalog.live()
    typed = plan.words
    vocabulary = None
    if _needs_vocabulary(typed) or (len(typed) > 1 and plan.code is None):
        vocabulary = await VOCABULARIES.of(catalog, index)
    if vocabulary is not None and _needs_vocabulary(typed):
        last = len(typed) - 1
        typed = tuple(vocabulary.correct(w, as_prefix=i == last) for i, w in enumerate(typed))
    asked = query_words(typed)
    corrected = typed != plan.words
    wordings = [asked]
    singular = tuple(IRREGULAR.get(w, w) for w in asked)
    if singular != asked:  # indexes hold "flat foot" and "swollen feet" alike
        wordings.append(singular)
    # A corrected word is whole; a word as typed may be the start of one.
    readings = [
        Query.of(w, prefix=not corrected and i == 0, typed=" ".join(typed) if i == 0 else "")
        for i, w in enumerate(wordings)
    ]
    documents, total = await _gather(index, plan, wordings, vocabulary)
    if len(asked) > 1 and sum(d.billable for d in documents) < _FEW:
        # Few entries have every word: add those that miss one (the rarest words first),
        # then any word at all.
        relaxed = list(combinations(asked, len(asked) - 1))
        if vocabulary is not None:
            relaxed.sort(key=lambda ws: min(vocabulary.entries(w) for w in ws))
        more, more_total = await _gather(index, plan, relaxed[:_MAX_RELAXED], vocabulary)
        if not documents and not more:
            anyword = replace(plan, words=_plan_order(_retrievable(asked)), match_all=False)
            more, more_total = await _retrieve(index, [anyword])
        seen = {d.doc_id for d in documents}
        documents += [d for d in more if d.doc_id not in seen]
        total = max(total, more_total)
    ranked = rank(plan, documents, readings)
    total = max(total, len(ranked))
    return Results(ranked[offset : offset + limit], total, asked)
