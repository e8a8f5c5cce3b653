"""Writing a projection into the live index of a catalog, following alias promotes.

A rebuild promotes a new index version and drops the old one while the running consumer
keeps writing. A write that picked the old live index just before the promote would land
in a dropped index (an error, or on OpenSearch an index auto-created by the write) and
be lost from the new one. So after every write (and after a failed one) the writer asks
which index is live: when it changed, it raises ``ProjectionMoved`` and the consumer
resumes from the new index's checkpoint, writing those events again, there.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from services.shared.consumer import ProjectionMoved
from services.shared.search.model import Checkpoint, IndexChange, SearchCatalog, SearchIndex

D = TypeVar("D")


class LiveWriter(Generic[D]):
    """The live index of ``catalog`` (or always ``pinned``, when building a new version)."""

    def __init__(self, catalog: SearchCatalog[D], pinned: SearchIndex[D] | None = None) -> None:
        self.catalog = catalog
        self.pinned = pinned
        self._current: SearchIndex[D] | None = None

    async def target(self) -> SearchIndex[D]:
        if self.pinned is not None:
            return self.pinned
        live = await self.catalog.live()
        moved = self._current is not None and live.name != self._current.name
        self._current = live
        if moved:
            raise ProjectionMoved(live.name)
        return live

    async def checkpoint(self, consumer: str, source: str) -> Checkpoint | None:
        """The checkpoint in the index live now (the consumer resumes from it)."""
        self._current = None
        return await (await self.target()).checkpoint(consumer, source)

    async def write(self, change: IndexChange[D], checkpoint: Checkpoint) -> None:
        target = await self.target()
        try:
            await target.write(change, checkpoint)
        except Exception as exc:
            if await self._moved(target):
                raise ProjectionMoved(f"{target.name} was replaced during a write") from exc
            raise
        if await self._moved(target):
            raise ProjectionMoved(f"{target.name} was replaced during a write")

    async def _moved(self, target: SearchIndex[D]) -> bool:
        if self.pinned is not None:
            return False
        return (await self.catalog.live()).name != target.name
