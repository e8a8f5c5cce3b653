"""The serving processes' heap settings (services/shared/memory.py), each in a fresh
process: they hold for that process's lifetime."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# Threads that each allocate from the C heap (buffers past pymalloc's small objects, under
# glibc's mmap threshold), then how many heaps glibc reports (malloc_info's XML).
_PROGRAM = textwrap.dedent("""
    import ctypes, ctypes.util, os, sys, tempfile, threading
    from services.shared.memory import limit_arenas
    if sys.argv[1] == "limited":
        limit_arenas(2)
    barrier = threading.Barrier(6)
    def allocate():
        held = [bytearray(64_000) for _ in range(20)]
        barrier.wait()  # all alive at once: each needs a heap of its own, if allowed
    threads = [threading.Thread(target=allocate) for _ in range(6)]
    for t in threads: t.start()
    for t in threads: t.join()
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.fopen.restype = ctypes.c_void_p
    with tempfile.NamedTemporaryFile(suffix=".xml") as out:
        stream = libc.fopen(out.name.encode(), b"w")
        libc.malloc_info(0, ctypes.c_void_p(stream))
        libc.fclose(ctypes.c_void_p(stream))
        print(open(out.name).read().count("<heap nr="))
""")


def _printed(program: str, *args: str) -> str:
    """What ``program`` prints, run in a fresh interpreter."""
    done = subprocess.run([sys.executable, "-c", program, *args], capture_output=True,
                          text=True, check=True)
    return done.stdout


def _heaps(mode: str) -> int:
    return int(_printed(_PROGRAM, mode))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_serving_processes_keep_at_most_two_heaps() -> None:
    assert _heaps("default") > 2  # the test can tell: threads do get heaps of their own
    assert _heaps("limited") <= 2


def test_a_settled_heap_leaves_what_was_loaded_out_of_collections() -> None:
    program = textwrap.dedent("""
        import gc
        from services.shared.memory import settle_heap
        kept = [[i] for i in range(50_000)]  # what a process keeps for its lifetime
        before = gc.get_freeze_count()
        settle_heap()
        print(gc.get_freeze_count() - before, gc.get_threshold()[0])
        del kept  # still freed when dropped: reference counting needs no collector
    """)
    frozen, young = map(int, _printed(program).split())
    assert frozen >= 50_000
    assert young > 700  # CPython's default: a collection every few searches
