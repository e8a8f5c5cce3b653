"""The readings of the texts the search under way has read: each text of its candidates
(titles, as their documents were loaded, and terms) is read once a search, not once a
process.

Within a search texts recur: a candidate is found by several plans, its title is matched
and then scored, a term is shared by entries. Across first-time searches they rarely do,
and keeping readings from one search to the next made them live just long enough to be
walked by every young-generation collection of the garbage collector: the 8,192 readings
kept, with the 5,000 documents the index kept (embedded.index) and their tuples, 68,000
objects, were new again at each collection, which took 37 ms, every 0.5 s in each
serving process under first-time load; 55 of the 64 slowest requests of 20 s waited on
one (bench/throughput.py's traffic). Forgotten at the start of each search, they are
freed as they stop being used: collections took 5-6 ms.

Kept apart from ``readings``, whose source is part of the ``RULES`` a kept reading was
read by: how readings are held is not how a text is read.
"""

from __future__ import annotations

from itertools import islice
from typing import Final

from services.lookup.search.readings import Reading

# A dict, in the order read: the compiled dict operations take a tenth of an OrderedDict's
# methods, called by name (2.8 % of a first-time search's instructions went to those).
_READ: Final[dict[str, Reading]] = {}
# A bound for what is read outside searches (warm-up loads every document), or by a
# search of thousands of texts: beyond it, the oldest are dropped.
_MAX_READ: Final = 8192
_DROPPED: Final = 512  # the oldest, dropped together once there are more than _MAX_READ


def begin_search() -> None:
    """Forget the texts read before: call as a search starts."""
    _READ.clear()


def read(text: str) -> Reading:
    # Taken out and put back, the most recently read last: each step alone is safe while
    # a warm-up's thread loads documents (keep), where a look-up then a move is not.
    found = _READ.pop(text, None)
    return keep(found if found is not None else Reading(text))


def keep(reading: Reading) -> Reading:
    """Hold the reading as its text's, for ``read``."""
    _READ[reading.text] = reading
    if len(_READ) > _MAX_READ:
        # The oldest texts, listed in one step (no other thread runs meanwhile), then
        # dropped each alone: another thread may have taken one out already.
        for text in list(islice(_READ, _DROPPED)):
            _READ.pop(text, None)
    return reading
