"""What a product derives from a whole index version, built on first need and kept while
current: a spelling vocabulary, say.

Kept per catalogue and index name, so a rebuild's new version gets its own. A version
still being written (the live one in embedded mode) is re-read when its document count
has changed, checked at most every ``recheck_seconds``: no search pays for more than a
``count``, but the first one on a version reads its documents once.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from services.shared.memory import release_free_memory
from services.shared.search.model import SearchCatalog, SearchIndex
from services.shared.threads import run_in_threadpool

log = logging.getLogger(__name__)

T = TypeVar("T")
_RECHECK_SECONDS = 30.0


@runtime_checkable
class Streamed(Protocol):
    def each_document(self) -> Iterator[Any]:
        """Every document, one at a time, in any order (blocking: run in a thread)."""


@dataclass
class _Cached(Generic[T]):
    value: T
    count: int
    checked: float


class PerVersion(Generic[T]):
    """``build(documents)`` of each index version, cached while its count is unchanged.

    ``empty`` is answered for an empty version (not kept, so that the first entries
    indexed are seen at once) and when a version cannot be read (a rebuild just dropped
    it: the newest value known is answered instead, if any).
    """

    def __init__(
        self,
        build: Callable[[Iterable[Any]], T],
        empty: Callable[[], T],
        recheck_seconds: float = _RECHECK_SECONDS,
    ) -> None:
        self._build = build
        self._empty = empty
        self._cached: weakref.WeakKeyDictionary[SearchCatalog, dict[str, _Cached[T]]] = (
            weakref.WeakKeyDictionary()
        )
        self._locks: weakref.WeakKeyDictionary[SearchCatalog, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._recheck = recheck_seconds

    def _fresh(self, versions: dict[str, _Cached[T]], name: str) -> T | None:
        cached = versions.get(name)
        if cached is not None and time.monotonic() - cached.checked < self._recheck:
            return cached.value
        return None

    async def _built(self, index: SearchIndex, count: int) -> _Cached[T]:
        """Derived from every document of ``index``: streamed one at a time where the
        index can (``Streamed``), else read whole, dropped, and the memory handed back.

        A whole index's documents take hundreds of megabytes; allocated while a serving
        process goes on answering, what it keeps meanwhile pins that memory for good.
        """
        if isinstance(index, Streamed):
            streamed = index
            value = await run_in_threadpool(lambda: self._build(streamed.each_document()))
            return _Cached(value, count, 0.0)
        documents = await index.documents()
        value = await run_in_threadpool(self._build, documents)
        built = _Cached(value, len(documents), 0.0)
        del documents
        release_free_memory()
        return built

    async def of(self, catalog: SearchCatalog, index: SearchIndex) -> T:
        versions = self._cached.setdefault(catalog, {})
        if (value := self._fresh(versions, index.name)) is not None:
            return value
        async with self._locks.setdefault(catalog, asyncio.Lock()):
            if (value := self._fresh(versions, index.name)) is not None:
                return value
            cached = versions.get(index.name)
            try:
                count = await index.count()
                if count == 0:
                    return self._empty()
                if cached is None or cached.count != count:
                    cached = await self._built(index, count)
            except Exception:  # a version that a rebuild has just dropped, say
                # Searches go on through the live version (the backend sees to that);
                # they only miss what is derived until the next one reads it.
                log.warning("nothing derived from %s", index.name, exc_info=True)
                newest = next(reversed(versions.values()), None)
                return newest.value if newest else self._empty()
            if versions.get(index.name) is not cached:
                # Versions come and go with rebuilds: keep the newest two.
                for stale in list(versions)[:-1]:
                    del versions[stale]
                versions[index.name] = cached
            cached.checked = time.monotonic()
            return cached.value
