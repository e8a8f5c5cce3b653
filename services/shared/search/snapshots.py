"""One view of each index for the whole of a search.

A product's search may send a backend several plans (other wordings, relaxed ones, the
entries marked the default): inside ``one_snapshot()`` the embedded backend answers every
plan sent to one index version from the same view of it, taken by the first. A commit
landing mid-search then cannot show its plans two states of the index, each document is
read from the store once a search, however many plans find it, and the searcher is set up
once. Outside a snapshot each request takes its own view. OpenSearch reads documents with
its hits and answers each request from the index as it is then (its catalog says so):
for it a snapshot changes nothing.

The views are dropped as the snapshot ends, so nothing read by one search is kept for
the next (what that costs the garbage collector: services.lookup.search.search_readings).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

# Each index's view, by the index: set by ``one_snapshot`` for the task searching (a
# context variable: concurrent searches in one process each see their own).
_VIEWS: ContextVar[dict[object, object] | None] = ContextVar("search_views", default=None)


@contextmanager
def one_snapshot() -> Iterator[None]:
    """Answer what is sent to each index inside it from one view of that index."""
    token = _VIEWS.set({})
    try:
        yield
    finally:
        _VIEWS.reset(token)


def held(index: object) -> object | None:
    """The view ``index`` took in the snapshot under way (``hold``), if any."""
    views = _VIEWS.get()
    return None if views is None else views.get(index)


def hold(index: object, view: object) -> None:
    """Keep ``view`` as ``index``'s until the snapshot under way ends (none: nothing)."""
    views = _VIEWS.get()
    if views is not None:
        views[index] = view
