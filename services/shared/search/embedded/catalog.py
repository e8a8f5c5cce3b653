"""The embedded search catalogue: tantivy index versions in directories, behind an alias.

Under the catalogue's directory each version is ``{alias}_v{N}/`` (a tantivy index) and
the alias is the file ``{alias}.alias`` naming the live one. ``promote`` replaces that
file atomically (written aside, fsynced, renamed), then deletes the older versions'
directories: readers see the old version or the new one, never a mix. A reader that
resolved the alias just before the swap is answered from the new live version (its
searches check that their version still exists). Versions numbered above the promoted
one are kept: they may be rebuilds in progress. Creating the first version and
promoting take a file lock, so processes sharing the directory agree on the numbers.

Searches run in the caller's thread: a tantivy query takes well under a millisecond,
less than a hop to a thread pool. Writes (a commit can take seconds) go to a thread.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Generic

from services.shared.search.embedded.index import TantivyIndex
from services.shared.search.model import D, DocumentType, SearchIndex
from services.shared.threads import run_in_threadpool

_ALIAS = re.compile(r"[a-z][a-z0-9_]*")


class TantivyCatalog(Generic[D]):
    """Versions of one document type's index and the alias naming the live one."""

    def __init__(self, root: Path, doc_type: DocumentType[D], alias: str = "codes") -> None:
        if not _ALIAS.fullmatch(alias):
            raise ValueError(f"alias {alias!r} must match {_ALIAS.pattern}")
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.doc_type = doc_type
        self.alias = alias
        self._alias_file = root / f"{alias}.alias"
        self._version_name = re.compile(rf"{re.escape(alias)}_v(\d+)")
        self._open: dict[str, TantivyIndex[D]] = {}
        self._seen: tuple[int, int, str] | None = None  # alias file (inode, mtime) -> target

    # -- versions -------------------------------------------------------------------

    def _number(self, name: str) -> int | None:
        match = self._version_name.fullmatch(name)
        return int(match.group(1)) if match else None

    def _versions(self) -> dict[str, int]:
        found = {}
        for entry in self.root.iterdir():
            n = self._number(entry.name)
            if n is not None and entry.is_dir():
                found[entry.name] = n
        return found

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.root / f"{self.alias}.lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _create_next(self) -> TantivyIndex[D]:
        numbers = list(self._versions().values())
        target = self.target()
        if target is not None and (n := self._number(target)) is not None:
            numbers.append(n)
        name = f"{self.alias}_v{max(numbers, default=0) + 1}"
        path = self.root / name
        path.mkdir()
        return self._index(name, create=True)

    def _index(self, name: str, create: bool = False) -> TantivyIndex[D]:
        index = self._open.get(name)
        if index is None:
            index = TantivyIndex(self, name, self.root / name, self.doc_type, create=create)
            self._open[name] = index
        return index

    def target(self) -> str | None:
        """The version the alias names (re-read only when the alias file changed)."""
        try:
            info = os.stat(self._alias_file)
        except FileNotFoundError:
            return None
        if self._seen is not None and self._seen[:2] == (info.st_ino, info.st_mtime_ns):
            return self._seen[2]
        target = self._alias_file.read_text().strip()
        self._seen = (info.st_ino, info.st_mtime_ns, target)
        return target

    def _write_alias(self, target: str) -> None:
        aside = self._alias_file.with_suffix(".alias.tmp")
        with open(aside, "w") as handle:
            handle.write(target)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(aside, self._alias_file)
        directory = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def live_now(self) -> TantivyIndex[D]:
        target = self.target()
        if target is not None and (self.root / target).is_dir():
            return self._index(target)
        with self._locked():
            target = self.target()
            if target is None or not (self.root / target).is_dir():
                target = self._create_next().name
                self._write_alias(target)
        return self._index(target)

    async def live(self) -> TantivyIndex[D]:
        return self.live_now()

    async def create_version(self) -> TantivyIndex[D]:
        def create() -> TantivyIndex[D]:
            with self._locked():
                return self._create_next()

        return await run_in_threadpool(create)

    def _promote(self, index: SearchIndex[D]) -> None:
        number = self._number(index.name)
        if number is None:
            raise ValueError(f"{index.name!r} is not a version of {self.alias!r}")
        with self._locked():
            versions = self._versions()
            if index.name not in versions:
                raise ValueError(f"{index.name!r} is not a version of {self.alias!r} here")
            self._write_alias(index.name)
            for name, n in versions.items():
                if n < number:
                    if (dropped := self._open.pop(name, None)) is not None:
                        dropped.close()
                    shutil.rmtree(self.root / name, ignore_errors=True)

    async def promote(self, index: SearchIndex[D]) -> None:
        """Point the alias at ``index`` and drop older versions."""
        await run_in_threadpool(self._promote, index)

    async def close(self) -> None:
        """Close the writers this catalogue opened (after their merges)."""
        indexes, self._open = list(self._open.values()), {}
        for index in indexes:
            await run_in_threadpool(index.close)
