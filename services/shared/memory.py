"""Handing freed heap back to the operating system after a large build that passes.

Reading a whole index (to derive a spelling vocabulary, say) allocates hundreds of
megabytes that are freed a moment later; glibc's allocator keeps such memory for reuse,
so a serving process would stay that large for its whole life. ``malloc_trim`` returns
it. Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache


@cache
def _trim() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not glibc
        return None


def release_free_memory() -> None:
    """Return the heap's free pages to the operating system, where the C library can."""
    trim = _trim()
    if trim is not None:
        trim(0)
