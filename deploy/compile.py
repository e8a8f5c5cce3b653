"""Compile the search ranker's hot modules to C with mypyc, in place (``make compiled``).

A search reads and scores every text of about two hundred candidates in Python. The same
modules compiled by mypyc rank about a quarter faster (bench/throughput.py, engine alone:
115 -> 145-152 q/s). Python imports an extension module before a source file of the same
name, so each compiled module stands in for its source; services/lookup/search refuses
one compiled before its source last changed.

Usage: python deploy/compile.py [--clean | --sources]
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Each must type-check under mypyc's rules (the project's mypy settings).
MODULES = (
    "services/lookup/search/scoring.py",
    "services/lookup/search/readings.py",
    "services/lookup/search/wording.py",
)
GROUP = "medcode_search"  # the shared runtime library's name: GROUP__mypyc.*.so at the root


def built() -> list[Path]:
    """The extension modules a compile leaves in the source tree."""
    found = [p for m in MODULES for p in (ROOT / m).parent.glob(f"{Path(m).stem}.*.so")]
    return found + list(ROOT.glob(f"{GROUP}__mypyc.*.so"))


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
        ext_modules=mypycify(list(MODULES), group_name=GROUP),
        script_args=["build_ext", "--inplace", "--force", "--build-temp", "build/compiled",
                     "--quiet"],
    )
    for path in built():  # copied with their build's times: dated now, after the sources
        path.touch()


if __name__ == "__main__":
    main()
