"""Lookup's search: query analysis, spelling, candidate retrieval and ranking.

``make compiled`` (deploy/compile.py) compiles the ranker's hottest modules to C with mypyc;
each extension module then stands in for its source. One compiled before its source last
changed would run old code, so importing this package refuses it.
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


refuse_stale_builds(Path(__file__).parent)
