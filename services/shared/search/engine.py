"""One search, whatever the backend: analyse, retrieve candidates, rank, page."""

from __future__ import annotations

from dataclasses import dataclass, replace

from services.shared.search.model import CodeDocument, SearchCatalog
from services.shared.search.ranking import analyze, rank

MAX_WINDOW = 1000


@dataclass(frozen=True)
class Results:
    documents: list[CodeDocument]
    total: int


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

    Every word must match when some entry has them all; otherwise any word may, so a
    query with one stray word still finds something useful.
    """
    window = min(max(200, offset + limit + 50), MAX_WINDOW)
    plan = analyze(text, systems=systems, billable_only=billable_only, chapter=chapter,
                   window=window)
    if not plan.words and not plan.code:
        return Results([], 0)
    index = await catalog.live()
    found = await index.candidates(plan)
    if not found.documents and len(plan.words) > 1:
        plan = replace(plan, match_all=False)
        found = await index.candidates(plan)
    ranked = rank(plan, found.documents)
    total = max(found.total, len(ranked))
    return Results(ranked[offset : offset + limit], total)
