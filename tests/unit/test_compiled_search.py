"""The compiled modules of search (deploy/compile.py) never run code older than their source."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from services.shared.compiled import refuse_stale_builds


def _module(directory: Path, name: str, built_after_source: bool) -> None:
    source, built = directory / f"{name}.py", directory / f"{name}.cpython-311-x86_64-linux-gnu.so"
    source.write_text("")
    built.write_bytes(b"")
    older, newer = 1_000_000_000, 1_000_000_100
    os.utime(source, (older, older) if built_after_source else (newer, newer))
    os.utime(built, (newer, newer) if built_after_source else (older, older))


def test_a_module_compiled_after_its_source_is_accepted(tmp_path: Path) -> None:
    _module(tmp_path, "scoring", built_after_source=True)
    refuse_stale_builds(tmp_path)


def test_a_module_compiled_before_its_source_changed_is_refused(tmp_path: Path) -> None:
    _module(tmp_path, "readings", built_after_source=True)
    _module(tmp_path, "scoring", built_after_source=False)
    with pytest.raises(ImportError, match="make compiled"):
        refuse_stale_builds(tmp_path)


def test_sources_without_a_compiled_module_are_accepted(tmp_path: Path) -> None:
    (tmp_path / "wording.py").write_text("")
    refuse_stale_builds(tmp_path)


def test_search_imports_where_an_installed_command_runs(tmp_path: Path) -> None:
    # A console script (`.venv/bin/medcode`) has neither the repository nor its working
    # directory on sys.path: a compiled module's runtime library must sit in its package.
    done = subprocess.run(
        [sys.executable, "-I", "-c", "import services.lookup.search.scoring"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stderr


def test_a_compile_clears_what_an_earlier_one_compiled(tmp_path: Path) -> None:
    # Every stand-in for a source and every runtime library, a module no longer compiled
    # included; not an extension module with no source beside it (a genuine one).
    from deploy.compile import built

    suffix = ".cpython-311-x86_64-linux-gnu.so"
    for name in ("scoring", "engine"):
        (tmp_path / f"{name}.py").write_text("")
        (tmp_path / f"{name}{suffix}").write_bytes(b"")
        (tmp_path / f"{name}__mypyc{suffix}").write_bytes(b"")
    (tmp_path / f"native{suffix}").write_bytes(b"")
    assert [p.name for p in built([tmp_path])] == [
        f"engine{suffix}", f"engine__mypyc{suffix}", f"scoring{suffix}", f"scoring__mypyc{suffix}",
    ]


_CONSTANT = re.compile(r"_?[A-Z][A-Z0-9_]*")


def _unfinal_constants(source: Path) -> list[str]:
    """Module-level names in capitals assigned without ``Final``: compiled, each use of
    one is a look-up in the module's dict."""
    found = []
    for node in ast.parse(source.read_text()).body:
        if isinstance(node, ast.Assign):
            names = [n for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name)]
            found += [n.id for n in names if _CONSTANT.fullmatch(n.id)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            final = "Final" in ast.unparse(node.annotation)
            if _CONSTANT.fullmatch(node.target.id) and not final:
                found.append(node.target.id)
    return found


# Constants a unit test sets for a small index (test_search_plans): read from the
# module's dict, as each must be for the test's value to be seen.
_SET_BY_TESTS = {"services/lookup/search/gathering.py": ["_COMMON"]}


def test_the_compiled_ranker_reads_its_constants_as_constants() -> None:
    from deploy.compile import MODULES, ROOT

    found = {m: _unfinal_constants(ROOT / m) for m in MODULES}
    assert {m: names for m, names in found.items() if names} == _SET_BY_TESTS
