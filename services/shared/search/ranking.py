"""Query analysis and the final ranking, shared by every search backend.

Backends only retrieve candidates for a ``QueryPlan``; this module decides the order,
so embedded and distributed search answer alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.shared.search.model import CodeDocument, QueryPlan
from services.shared.search.text import MAX_QUERY_WORDS, stem, stems, words

# Anything a coder may type as a code of some system: I21.9, i219, 0DTJ4ZZ, J1100, 99213.
_CODE_LIKE = re.compile(r"[A-Z0-9]{3,7}")
_CODE_NOISE = re.compile(r"[\s.\-_]+")


def code_in(text: str) -> str | None:
    """The compact code a query names, when the whole query reads as one code."""
    compact = _CODE_NOISE.sub("", text.strip()).upper()
    if not _CODE_LIKE.fullmatch(compact) or not any(c.isdigit() for c in compact):
        return None
    return compact


def analyze(
    text: str,
    *,
    systems: tuple[str, ...] = (),
    billable_only: bool = False,
    chapter: str | None = None,
    window: int = 200,
) -> QueryPlan:
    tokens = tuple(words(text)[:MAX_QUERY_WORDS])
    return QueryPlan(
        words=tokens,
        code=code_in(text),
        systems=systems,
        billable_only=billable_only,
        chapter=chapter,
        window=window,
    )


@dataclass(frozen=True)
class Scored:
    document: CodeDocument
    score: float


def rank(plan: QueryPlan, candidates: list[CodeDocument]) -> list[CodeDocument]:
    """Order candidates: the code typed, then word coverage of title over terms."""
    query = [stem(w) for w in plan.words]
    scored = [
        Scored(doc, _score(plan, query, doc, position, len(candidates)))
        for position, doc in enumerate(candidates)
    ]
    scored.sort(key=lambda s: (-s.score, s.document.code))
    return [s.document for s in scored]


def _score(
    plan: QueryPlan, query: list[str], doc: CodeDocument, position: int, total: int
) -> float:
    score = 0.0
    if plan.code:
        if doc.compact == plan.code:
            score += 1000.0
        elif doc.compact.startswith(plan.code):
            score += 500.0 - (len(doc.compact) - len(plan.code))
    if query:
        title = stems(doc.title)
        terms = stems(" | ".join(doc.terms))
        last = len(query) - 1
        covered_title = covered_any = 0
        for i, word in enumerate(query):
            in_title = word in title or (i == last and any(t.startswith(word) for t in title))
            in_terms = word in terms or (i == last and any(t.startswith(word) for t in terms))
            covered_title += in_title
            covered_any += in_title or in_terms
        score += 40.0 * covered_any / len(query) + 20.0 * covered_title / len(query)
        # Fewer extra words in the title: the query says more of what the code is.
        score -= 0.2 * max(0, len(title) - covered_title)
    if doc.billable:
        score += 1.0
    # No term for the backend's own order: backends score differently, and relevance
    # must not depend on the mode. Exact ties fall back to code order in rank().
    return score
