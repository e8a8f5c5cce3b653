"""Compiled stand-ins for source modules (``make compiled``, deploy/compile.py).

mypyc compiles a few hot modules to C; each extension module then stands in for its
source, as Python imports one before a source file of the same name. One compiled
before its source last changed would run old code, so each package holding compiled
modules refuses that when imported.
"""

from __future__ import annotations

from pathlib import Path


def source_of(built: Path) -> Path:
    """The source an extension module stands in for, whether or not it exists:
    "scoring.cpython-311-x86_64-linux-gnu.so" is "scoring.py" beside it."""
    return built.with_name(f"{built.name.split('.')[0]}.py")


def refuse_stale_builds(here: Path) -> None:
    """Raise ImportError for a compiled module in ``here`` older than its source."""
    for built in here.glob("*.so"):
        source = source_of(built)
        if source.exists() and built.stat().st_mtime < source.stat().st_mtime:
            raise ImportError(
                f"{built.name} was compiled before {source} last changed: run "
                "`make compiled` to compile it again, or "
                "`python deploy/compile.py --clean` to run the source"
            )
