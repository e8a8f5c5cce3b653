"""Compiled stand-ins for source modules (``make compiled``, deploy/compile.py).

mypyc compiles a few hot modules to C; each extension module then stands in for its
source, as Python imports one before a source file of the same name. One compiled
before its source last changed would run old code, so each package holding compiled
modules refuses that when imported.
"""

from __future__ import annotations

from pathlib import Path


def refuse_stale_builds(here: Path) -> None:
    """Raise ImportError for a compiled module in ``here`` older than its source."""
    for built in here.glob("*.so"):
        source = here / f"{built.name.split('.')[0]}.py"
        if source.exists() and built.stat().st_mtime < source.stat().st_mtime:
            raise ImportError(
                f"{built.name} was compiled before {source} last changed: run "
                "`make compiled` to compile it again, or "
                "`python deploy/compile.py --clean` to run the source"
            )
