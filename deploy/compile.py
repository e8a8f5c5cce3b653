"""Compile the search ranker's hot modules to C with mypyc, in place (``make compiled``).

A search reads and scores every text of about 150 candidates in Python. The same
modules compiled by mypyc rank about a quarter faster (bench/throughput.py, engine alone:
115 -> 145-152 q/s). Python imports an extension module before a source file of the same
name, so each compiled module stands in for its source; the package holding one refuses
it when compiled before its source last changed (services/shared/compiled.py).

Usage: python deploy/compile.py [--clean | --sources]
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from deploy/

from services.shared.compiled import source_of  # noqa: E402

# Each must type-check under mypyc's rules (the project's mypy settings).
MODULES = (
    "services/lookup/search/scoring.py",
    "services/lookup/search/matching.py",
    "services/lookup/search/readings.py",
    "services/lookup/search/search_readings.py",  # read() is called for every text
    "services/lookup/search/wording.py",
    # The union of a search's plans (3.6 a first-time search) and the seventh-character
    # codes of its candidates, each candidate's id read by a set: 1 % fewer instructions
    # compiled (callgrind, 300 bench queries: 22.58M -> 22.40M a search).
    "services/lookup/search/gathering.py",
    # The search document: a search makes about 170 from the store and the ranker reads
    # each one's fields many times, as a compiled class's more cheaply. (Engine alone,
    # four alternated runs: 9.0-10.6 -> 7.6-8.9 ms a query; later runs through the
    # gateway moved within this machine's noise.) Compiled, a frozen dataclass checks
    # its fields' types when made and cannot be unpickled; nothing pickles one.
    "services/lookup/search/documents.py",
    # Folding, splitting and stemming words, which the ranker asks of every text it
    # reads: from source, each call was an interpreted frame. Compiled, the ranker runs
    # 2 % fewer instructions (callgrind, 500 bench queries), and stem's cache (a dict)
    # is looked up directly: 7 % fewer again.
    "services/shared/search/text.py",
)


def built(packages: Iterable[Path] | None = None) -> list[Path]:
    """The extension modules a compile leaves in the packages it compiles: each module
    standing in for a source beside it, and its runtime library (``<module>__mypyc``;
    kept in the package, so that whatever imports the package finds it, an installed
    console script included). Those of a module no longer compiled too: left behind, one
    would stand in for its source until that changed."""
    if packages is None:
        packages = {(ROOT / module).parent for module in MODULES}
    return sorted(
        path
        for package in packages
        for path in package.glob("*.so")
        if source_of(path).exists() or source_of(path).stem.endswith("__mypyc")
    )


def main() -> None:
    if "--sources" in sys.argv:  # for make, which compiles again when one changes
        print(" ".join(MODULES))
        return
    for path in built():
        path.unlink()
    if "--clean" in sys.argv:
        return
    from mypyc.build import mypycify
    from setuptools import setup

    setup(
        name="medcode-compiled",
        ext_modules=mypycify(list(MODULES), separate=True),
        script_args=["build_ext", "--inplace", "--force", "--build-temp", "build/compiled",
                     "--quiet"],
    )
    for path in built():  # copied with their build's times: dated now, after the sources
        path.touch()


if __name__ == "__main__":
    main()
