"""Lookup's code search, whatever the backend: analyse, correct, retrieve candidates,
rank, page.

What people type reaches the codes through the index itself: the lookup service's
projection writes lay words, abbreviations and procedure names into each entry's terms
(services/lookup/lexicon.py), so every caller and both backends search them alike. What
only the query can tell (misspellings corrected against the words of the live index,
stopwords, other wordings, the conditions it names) is read by search.interpretation;
this module decides what to ask a backend for, in what order, and ranks what comes back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import combinations

from services.lookup.search.analysis import analyze, codes_listed, mended
from services.lookup.search.documents import CodeDocument, CodeFacets
from services.lookup.search.english import common_words
from services.lookup.search.gathering import (
    Found,
    encounters,
    extended,
    gather,
    plan_order,
    retrievable,
    retrieve,
    union_found,
)
from services.lookup.search.intent import prepare
from services.lookup.search.interpretation import (
    NAMES,
    VOCABULARIES,
    Interpretation,
    interpret,
)
from services.lookup.search.matching import Query
from services.lookup.search.names import Names
from services.lookup.search.precedence import (
    asked_for_first,
    holding_first,
    holding_more_first,
)
from services.lookup.search.readings import read_again
from services.lookup.search.scoring import rank, renamed_match
from services.lookup.search.search_readings import begin_search
from services.lookup.search.spelling import Vocabulary
from services.lookup.search.wording import diagnosis_of, said_to_be
from services.shared.search.cache import SearchCache
from services.shared.search.model import (
    QueryPlan,
    SearchCatalog,
    SearchIndex,
)
from services.shared.search.snapshots import one_snapshot

log = logging.getLogger(__name__)

MAX_WINDOW = 1000
# Candidates re-ranked for any page, however small: the backend's best 150 hold what
# ranking puts first, and reading and ranking each costs a first-time search about 30
# microseconds. Development sets (2,299 queries), top-five hits: 2,239 at 200, 150
# and 120; 2,234 at 100, where the many codes of a wrist fracture's families crowd out
# the one asked for. Engine alone 137-144 -> 147-167 q/s, first-time searches through
# the gateway 208-234 -> 234-275 req/s (bench/throughput.py, alternated runs).
#
# How many is the backend's own figure (``search``'s ``candidates``, chosen where a
# product is put together: lookup.runtime): each orders its best matches its own way
# (BM25 as each computes it), and each backend's development runs choose (those below
# were run while tantivy broke ties at the cut by write order, before its documents were
# kept in doc id order). OpenSearch keeps 150:
# at 120 its first held-out sentences fell 0.93 -> 0.91 and probe4 0.91 -> 0.90
# (4164853). The embedded index needs 120: the same 59 of the 2,299 development queries
# miss as at 150, and a first-time search costs 9 % fewer instructions
# (bench/instructions.py, 300 queries: 22.2M -> 20.3M).
CANDIDATES = 150
EMBEDDED_CANDIDATES = 120
# With fewer billable entries than this having every word, look at those missing one:
# "sepsis pna" is one entry (melioidosis names both), and a coder wants sepsis and
# pneumonia next. Those having every word are still listed first, ranked among
# themselves (Found.complete): the ranker can prefer three words in one text to four
# strewn over an entry's texts ("orif left clavicle fracture" is the reduction, not the
# fracture), and that must not let a partial match above a complete one.
_FEW = 3
_MAX_RELAXED = 6
_MAX_PAIRS = 10
# How many of the backend's best matches of any word are ranked for a sentence (four
# words or more) that few entries hold whole: each backend orders such matches its own
# way, and a wider net lets more of the same entries into both (development sentences
# 0.87 / 0.82 -> 0.89 / 0.84 on tantivy / OpenSearch; 1,000 let in more noise than it
# found). Shorter queries, most of what people send as they type, keep the page's window.
_ANY_WINDOW = 600


@dataclass(frozen=True)
class Results:
    documents: list[CodeDocument]
    total: int
    asked: tuple[str, ...] = ()  # the words searched for, after spelling correction

    def without_terms(self) -> Results:
        """As kept in a cache: terms are for matching, never shown."""
        return replace(self, documents=[replace(d, terms=()) for d in self.documents])


async def warm(catalog: SearchCatalog) -> None:
    """Derive from the live index now (seconds for a full one) what searches read from
    it, and read the query word lists, rather than in the first search that needs them."""
    prepare()
    common_words()
    index = await catalog.live()
    before = read_again()
    await VOCABULARIES.of(catalog, index)  # (each reads every document)
    await NAMES.of(catalog, index)
    if read_again() > before:
        log.warning(
            "the search index %s keeps titles read by other rules than this version's, "
            "or none: searches read them again, correctly but more slowly; "
            "`medcode projections rebuild search` keeps them by these", index.name)


async def search(
    catalog: SearchCatalog,
    text: str,
    *,
    systems: tuple[str, ...] = (),
    billable_only: bool = False,
    chapter: str | None = None,
    offset: int = 0,
    limit: int = 10,
    cache: SearchCache[Results] | None = None,
    count: bool = True,
    typing: bool = False,
    candidates: int = CANDIDATES,
) -> Results:
    """Rank the best candidates and return one page of them.

    Stopwords are dropped and misspelt words corrected against the index's own
    vocabulary. Every word must match when a few billable entries have them all;
    otherwise entries missing one word are added (after those having all), then those
    holding two, then any word may match, so a query with stray words still finds
    something useful. A query listing codes lists each (``_listed``). ``total`` counts
    every match only with ``count``; otherwise it is at least what was ranked, and more
    when more match. ``typing``: the query is still being typed, as a search box sends it
    on each keystroke, so its last word may be the start of one (interpretation).
    ``candidates``: how many of the backend's best matches are ranked for any page (this
    backend's figure: ``CANDIDATES`` or ``EMBEDDED_CANDIDATES``).
    """
    window = min(max(candidates, offset + limit + 50), MAX_WINDOW)
    listed, plan, diagnosis, told = _read_query(text, systems, billable_only, chapter, window,
                                                count)
    if not listed and not plan.words and not plan.key:
        return Results([], 0)

    async def answer(index: SearchIndex) -> Results:
        begin_search()
        with one_snapshot():  # every plan of the search reads one view of the index
            if listed:
                return await _listed(catalog, index, listed, offset, limit)
            return await _search(catalog, index, plan, offset, limit, diagnosis, told,
                                 typing)

    if cache is None:
        return await answer(await catalog.live())
    index = await cache.live(catalog)
    key = (index.name, listed or plan, diagnosis, told, offset, limit, typing)
    if (cached := cache.get(key)) is not None:
        return cached
    epoch = cache.epoch
    results = await answer(index)
    cache.put(key, results.without_terms(), epoch)
    return results


# Queries read lately, in each serving process: a query asked again (its answer kept in
# the search cache) is not read again. Reading one costs most of what answering it from
# the cache does (50 of 56 microseconds).
_READ_QUERIES = 2048


@lru_cache(maxsize=_READ_QUERIES)
def _read_query(
    text: str, systems: tuple[str, ...], billable_only: bool, chapter: str | None,
    window: int, count: bool,
) -> tuple[tuple[QueryPlan, ...], QueryPlan, tuple[str, ...], tuple[str, ...]]:
    """What the text alone says: the plans of the codes it lists, its plan, the
    diagnosis it says was made (wording.diagnosis_of) and what it says something is
    (wording.said_to_be)."""
    listed = _listed_plans(text, systems, billable_only, chapter, window=window, count=count)
    plan = analyze(text, systems=systems, billable_only=billable_only, chapter=chapter,
                   window=window, count=count)
    diagnosis = diagnosis_of(text)
    return listed, plan, diagnosis, () if diagnosis else said_to_be(text)


def _listed_plans(
    text: str, systems: tuple[str, ...], billable_only: bool, chapter: str | None,
    *, window: int = CANDIDATES, count: bool = True,
) -> tuple[QueryPlan, ...]:
    """A plan for each code of a query that lists codes ("E11.9, I10"): the code alone,
    not its characters as words ("9" is in "NIHSS score 9"); none for another query."""
    return tuple(
        replace(analyze(code, systems=systems, billable_only=billable_only, chapter=chapter,
                        window=window, count=count), words=())
        for code in codes_listed(text)
    )


async def _listed(
    catalog: SearchCatalog, index: SearchIndex, plans: tuple[QueryPlan, ...], offset: int,
    limit: int,
) -> Results:
    """Each code of a list searched alone: the first match of each in the order typed
    (the code itself), then the second of each (codes under it), and so on."""
    each = [await _search(catalog, index, plan, 0, offset + limit) for plan in plans]
    merged: list[CodeDocument] = []
    seen: set[str] = set()
    for rank_ in range(offset + limit):
        for results in each:
            if rank_ < len(results.documents):
                doc = results.documents[rank_]
                if doc.doc_id not in seen:
                    seen.add(doc.doc_id)
                    merged.append(doc)
    total = max(sum(r.total for r in each), len(merged))
    return Results(merged[offset : offset + limit], total)


async def _search(
    catalog: SearchCatalog, index: SearchIndex, plan: QueryPlan, offset: int, limit: int,
    diagnosis: tuple[str, ...] = (), told: tuple[str, ...] = (), typing: bool = False,
) -> Results:
    analysis = await interpret(catalog, index, plan, diagnosis, told, typing=typing)
    found = await _find(index, analysis)
    if plan.key and not any(d.compact.startswith(plan.key) for d in found.documents):
        if (other := mended(plan.key)) is not None:
            return await _search(catalog, index, replace(plan, key=other), offset, limit,
                                 diagnosis, told, typing)
    # Entries holding every word, when listed first, are ranked by the words as typed:
    # other names of a condition are for finding what they do not hold.
    complete = found.complete
    readings = [*analysis.readings, *found.renamed]
    ranked = (
        rank(plan, found.documents[:complete], analysis.readings)
        + rank(plan, found.documents[complete:], readings)
        if complete
        else rank(plan, found.documents, readings)
    )
    ranked = await _with_encounters(index, plan, ranked, offset + limit, complete,
                                    analysis.readings, readings)
    total = max(found.total, len(ranked))
    return Results(ranked[offset : offset + limit], total, analysis.asked)


async def _with_encounters(
    index: SearchIndex, plan: QueryPlan, ranked: list[CodeDocument], page: int,
    complete: int, as_typed: list[Query], readings: list[Query],
) -> list[CodeDocument]:
    """``ranked``, with the seventh-character codes of the entries on the page that need
    one (gathering.encounters) ranked among them, each with the entries its own entry
    is ranked with (those holding every word, listed first, or the rest)."""
    head = ranked[:page]
    found = await encounters(index, plan, head, ranked)
    if not found:
        return ranked
    first = {d.doc_id for d in ranked[:complete]}
    joining = [c for entry, codes in found if entry.doc_id in first for c in codes]
    rest = [c for entry, codes in found if entry.doc_id not in first for c in codes]
    if not complete:
        return rank(plan, head + rest, readings) + ranked[page:]
    return (
        rank(plan, head[:complete] + joining, as_typed)
        + rank(plan, head[complete:] + rest, readings)
        + ranked[page:]
    )


async def _find(index: SearchIndex, analysis: Interpretation) -> Found:
    """The candidates search ranks, and the plan whose matches its total counts.

    Every word must match when a few billable entries (_FEW) have them all; otherwise
    entries missing one word are added, then those holding two of them, then the
    backend's best matches of any word, then those holding the conditions the query
    names (search.names), and those holding every word once a condition
    the query names is named another way (search.names); any entries having every word
    stay ahead of them (Found.complete).
    """
    plan, asked, vocabulary = analysis.plan, analysis.asked, analysis.vocabulary
    found = holding_first(await gather(index, plan, analysis.wordings, vocabulary), asked,
                          analysis.corrected)
    billable = sum(d.billable for d in found.documents[: found.complete])
    if len(asked) > 1 and billable < _FEW:
        complete = found.complete if billable else 0
        fallback = False
        if not complete:
            # None holds every word: those the backend found stay first, as they hold
            # the rarer ones it was sent, if of a kind the query asks for
            # (search.precedence).
            found, complete = asked_for_first(found, plan, analysis.readings[0])
            fallback = any(d.billable for d in found.documents[:complete])
            complete = complete if fallback else 0
        # Few entries have every word: add those that miss one (the rarest words first).
        # Words no entry holds find nothing in any combination ("months ago"): left out.
        held = _held(asked, vocabulary)
        relaxed = list(combinations(held, len(held) - 1)) if len(held) > 1 else []
        if len(held) < len(asked):  # every word some entry holds: first among equals
            relaxed.insert(0, held)
        if vocabulary is not None:
            relaxed.sort(key=lambda ws: min(vocabulary.entries(w) for w in ws))
        more = await gather(index, plan, relaxed[:_MAX_RELAXED], vocabulary)
        if len(asked) > 3:  # (of three words, the pairs are the above)
            # And those holding two of the words (the rarest pairs first): a sentence's
            # best few matches of any word differ from backend to backend, as each
            # scores them its own way; the entries holding a pair are the same in both.
            pairs = list(combinations(held, 2))
            if vocabulary is not None:
                pairs.sort(key=lambda ws: max(vocabulary.entries(w) for w in ws))
            # Words side by side first, the rarest of them first: a sentence's phrases
            # ("blacked out", "heart attack") are its neighbours.
            pairs.sort(key=lambda ws: held.index(ws[1]) - held.index(ws[0]) > 1)
            more = union_found(more, await gather(index, plan, pairs[:_MAX_PAIRS], vocabulary))
        # And the entries holding the most of the words, whichever (the backend's best
        # matches of any word, ranked here): "type 2 diabetes with chronic kidney
        # disease stage 3" is E11.22, which lacks two of them.
        wide = max(plan.window, _ANY_WINDOW) if len(asked) > 3 else plan.window
        anyword = replace(plan, words=plan_order(retrievable(asked)), match_all=False,
                          window=wide)
        more = union_found(more, await retrieve(index, [anyword]))
        if analysis.named:  # and those holding the conditions the query names
            more = union_found(more, await gather(index, plan, [analysis.named], vocabulary))
        found = union_found(found, more)
        if fallback:
            found, complete = holding_more_first(found, complete, asked, analysis.corrected)
        if analysis.names is not None:
            found = await _renamed(index, analysis, analysis.names, found)
        return replace(found, complete=complete)
    return replace(found, complete=0)  # enough hold every word: all ranked together


def _held(asked: tuple[str, ...], vocabulary: Vocabulary | None) -> tuple[str, ...]:
    """The words some entry holds; the last always (it may be a word still typed)."""
    if vocabulary is None:
        return asked
    last = len(asked) - 1
    return tuple(w for i, w in enumerate(asked) if i == last or vocabulary.entries(w))


async def _renamed(
    index: SearchIndex, analysis: Interpretation, names: Names, found: Found
) -> Found:
    """``found``, and the combination codes found by naming a condition of the query
    another way (scoring.renamed_match), with the readings that found them; the rest of
    what those readings retrieve would crowd what the words as typed found."""
    asked = analysis.asked
    renamed = names.readings(asked)
    if not renamed:
        return found
    readings = tuple(
        Query.of(r.words, prefix=not analysis.corrected and r.words[-1] == asked[-1],
                 renamed=r.name)
        for r in renamed
    )
    more = await gather(index, analysis.plan, [r.words for r in renamed], analysis.vocabulary)
    combined = [d for d in more.documents if any(renamed_match(q, d) for q in readings)]
    if not combined:
        return found
    return replace(found, documents=extended(found.documents, combined), renamed=readings)


async def facets(
    catalog: SearchCatalog,
    text: str,
    *,
    systems: tuple[str, ...] = (),
    billable_only: bool = False,
    chapter: str | None = None,
    typing: bool = False,
    candidates: int = CANDIDATES,
) -> CodeFacets:
    """How the entries a search for ``text`` counts in its total fall by code system,
    chapter and billable: for the filters a client shows next to the results.

    The query is read as ``search`` reads it (spelling corrected, still ``typing`` or
    not, relaxed when no billable entry has every word) and counted over the one
    backend plan whose match count is the search's total. Each group ignores its own
    filter and keeps the others, so without that filter its counts add up to the total.
    They add up to less only when ``search`` also lists entries beyond that plan's (a
    singular reading, other relaxed wordings) and counts more than it. Separate from
    ``search``, which never pays for it: this asks the backends again. ``candidates``: as
    ``search`` is told, for the same plans.
    """
    index = await catalog.live()
    if listed := _listed_plans(text, systems, billable_only, chapter):  # each code's, summed
        return CodeFacets.summed([CodeFacets.of(await index.facets(p)) for p in listed])
    plan = analyze(
        text, systems=systems, billable_only=billable_only, chapter=chapter, window=candidates
    )
    if not plan.words and not plan.key:
        return CodeFacets()
    begin_search()
    with one_snapshot():  # counted in the view the plan was found in
        found = await _find(index, await interpret(catalog, index, plan, typing=typing))
        if found.counted is None:
            return CodeFacets()
        return CodeFacets.of(await index.facets(found.counted))
