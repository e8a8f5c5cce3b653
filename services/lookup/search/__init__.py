"""Lookup's search: query analysis, spelling, candidate retrieval and ranking.

``make compiled`` (deploy/compile.py) compiles the ranker's hottest modules to C with mypyc;
each extension module then stands in for its source. One compiled before its source last
changed would run old code, so importing this package refuses it.
"""

from __future__ import annotations

from pathlib import Path

from services.shared.compiled import refuse_stale_builds

refuse_stale_builds(Path(__file__).parent)
