"""Keeping a long-lived process's heap small and its garbage collections short.

- Reading a whole index (to derive a spelling vocabulary, say) allocates hundreds of
  megabytes that are freed a moment later; glibc keeps such memory for reuse, so a
  serving process would stay that large for its whole life. ``malloc_trim`` returns it.
- glibc gives each thread that allocates its own heap ("arena"), up to eight per core.
  A serving process has threads that allocate now and then (the thread pool of blocking
  store calls, tantivy's), and each arena keeps its own free memory: under
  load a serving process grew by 140 MB in the repeated-search benchmark with the
  default, by 6 MB with two arenas. The GIL lets one thread run Python at a time, so
  more arenas buy little concurrency.
- Python's cycle collector walks every object it tracks in a full collection: in a
  serving process, tens of thousands held for its lifetime (the started products, a
  spelling vocabulary). ``settle_heap`` leaves those out of later collections once they
  are loaded, and collects the youngest generation less often: in-process, first-time
  searches ran 115 q/s with collections taking 15 % of the time (full ones pausing up to
  97 ms), 162 q/s settled.

Elsewhere than glibc the first two do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from functools import cache

SERVING_ARENAS = 2  # one for the event loop's thread, one shared by all the others
_M_ARENA_MAX = -8  # mallopt's parameter number (malloc.h)


@cache
def libc(function: str) -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    """A function of the C library, or None where it has none (not glibc, say)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return getattr(ctypes.CDLL(name), function)  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not glibc
        return None


def limit_arenas(arenas: int = SERVING_ARENAS) -> None:
    """Let the C library keep at most ``arenas`` heaps: call first thing in a process that
    serves (it holds for heaps made from then on)."""
    mallopt = libc("mallopt")
    if mallopt is not None:
        mallopt(_M_ARENA_MAX, arenas)


def release_free_memory() -> None:
    """Return the heap's free pages to the operating system, where the C library can."""
    trim = libc("malloc_trim")
    if trim is not None:
        trim(0)


# Allocations (less deallocations) of tracked objects between two collections of the
# youngest generation; CPython's default, 700, means one every few searches.
_YOUNG = 10_000


def settle_heap() -> None:
    """Call once a serving process holds what it keeps for its lifetime (its products
    started and warmed up): that is moved out of the collector's reach (``gc.freeze``;
    it is still freed by reference counting when dropped), and young objects are
    collected less often."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(_YOUNG, middle, old)
