"""Recent search answers, so that a query asked again costs a dictionary lookup.

Searches repeat: a few hundred queries make most of a day's traffic, and an answer only
changes when the index does. An answer is kept per index version and analysed query
(so "Heart  attack" and "heart attack" share one) until:

- the index is written by this process (``changed``: the embedded projection calls it
  after every batch, so embedded answers are never stale);
- it is ``ttl`` seconds old, on an index that cannot say when it was written (writes
  made by another process, the distributed worker, are seen within that time, as
  OpenSearch's own refresh interval delays them anyway);
- newer answers push it out (least recently used first; the size is bounded).

The live index (which version the alias names) is re-read at most once a second: a
rebuild's swap is seen that late, and until then both backends answer a search on a
dropped version from the alias's new target. An index that can tell cheaply when it was
last written (``Stamped``: the embedded one, which other serving processes may write)
is asked then too, and a change forgets every answer: within a second, not ``ttl``. Its
answers need no ``ttl`` and are kept until it changes (or newer answers push them out):
with several serving processes, each keeps its own answers, and a ``ttl`` would throw
away what the second and third asker of a query make each process learn.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    from services.shared.search.model import SearchCatalog, SearchIndex

R = TypeVar("R")  # a product's answer to a search


@runtime_checkable
class Stamped(Protocol):
    def stamp(self) -> Hashable:
        """A value that changes whenever the index's searchable state does."""

_ALIAS_SECONDS = 1.0


class SearchCache(Generic[R]):
    def __init__(self, entries: int = 2048, ttl: float = 60.0) -> None:
        self.entries = entries
        self.ttl = ttl
        self._answers: OrderedDict[Hashable, tuple[float, R]] = OrderedDict()
        self._epoch = 0  # bumped by every write: answers begun before it are not kept
        self._live: tuple[float, SearchIndex] | None = None
        self._stamp: Hashable = None
        self._stamped = False  # the live index says when it was written: no ttl needed

    async def live(self, catalog: SearchCatalog) -> SearchIndex:
        """``catalog.live()``, asked at most once a second (one cache serves one catalog)."""
        if self._live is not None and time.monotonic() - self._live[0] < _ALIAS_SECONDS:
            return self._live[1]
        index = await catalog.live()
        self._live = (time.monotonic(), index)
        self._stamped = isinstance(index, Stamped)
        if isinstance(index, Stamped):
            stamp = (index.name, index.stamp())
            if stamp != self._stamp:
                self.changed()  # written elsewhere, or another version: nothing kept holds
                self._stamp = stamp
        return index

    @property
    def epoch(self) -> int:
        return self._epoch

    def get(self, key: Hashable) -> R | None:
        found = self._answers.get(key)
        if found is None:
            return None
        stored, results = found
        if not self._stamped and time.monotonic() - stored > self.ttl:
            del self._answers[key]
            return None
        self._answers.move_to_end(key)
        return results

    def put(self, key: Hashable, results: R, epoch: int) -> None:
        """Keep ``results``, computed from the index as it was at ``epoch`` (keep them
        small: what is kept stays in memory)."""
        if epoch != self._epoch or self.entries <= 0 or self.ttl <= 0:
            return  # the index changed while this answer was computed
        self._answers[key] = (time.monotonic(), results)
        self._answers.move_to_end(key)
        while len(self._answers) > self.entries:
            self._answers.popitem(last=False)

    def changed(self) -> None:
        """The index was written: forget every answer."""
        self._epoch += 1
        self._answers.clear()
