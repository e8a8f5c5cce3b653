"""The search cache on its own: expiry, bounds, and answers that began before a write."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from services.lookup.search.documents import CodeDocument
from services.lookup.search.engine import Results
from services.shared.search import cache as cache_module
from services.shared.search.cache import SearchCache


def results(code: str) -> Results:
    doc = CodeDocument("ICD10CM", code, f"Title of {code}", True, "code", terms=("lay words",))
    return Results([doc], 1, ("word",))


def test_an_answer_is_kept_without_its_terms() -> None:
    cache: SearchCache[Results] = SearchCache()
    cache.put("q", results("I10").without_terms(), cache.epoch)
    kept = cache.get("q")
    assert kept is not None
    assert [(d.code, d.title, d.terms) for d in kept.documents] == [("I10", "Title of I10", ())]
    assert kept.total == 1 and kept.asked == ("word",)


def test_an_answer_computed_across_a_write_is_not_kept() -> None:
    cache = SearchCache()
    epoch = cache.epoch
    cache.changed()
    cache.put("q", results("I10"), epoch)
    assert cache.get("q") is None


def test_a_write_forgets_every_answer() -> None:
    cache = SearchCache()
    cache.put("q", results("I10"), cache.epoch)
    cache.changed()
    assert cache.get("q") is None


def test_answers_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(cache_module.time, "monotonic", lambda: now[0])
    cache = SearchCache(ttl=60)
    cache.put("q", results("I10"), cache.epoch)
    now[0] += 59
    assert cache.get("q") is not None
    now[0] += 2
    assert cache.get("q") is None


@dataclass
class Index:
    """An index as the cache sees it: a name and, when stamped, a write stamp."""

    name: str = "codes-v1"


@dataclass
class StampedIndex(Index):
    written: int = 0

    def stamp(self) -> int:
        return self.written


@dataclass
class Catalog:
    index: Index

    async def live(self) -> Index:
        return self.index


def test_answers_of_an_index_that_says_when_it_was_written_last_until_it_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr(cache_module.time, "monotonic", lambda: now[0])
    index = StampedIndex()
    catalog = Catalog(index)
    cache = SearchCache(ttl=60)
    asyncio.run(cache.live(catalog))  # type: ignore[arg-type]
    cache.put("q", results("I10"), cache.epoch)
    now[0] += 3600
    asyncio.run(cache.live(catalog))  # type: ignore[arg-type]
    assert cache.get("q") is not None  # an hour on, the index unchanged
    index.written += 1
    now[0] += 2
    asyncio.run(cache.live(catalog))  # type: ignore[arg-type]
    assert cache.get("q") is None


def test_answers_of_an_index_that_cannot_say_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(cache_module.time, "monotonic", lambda: now[0])
    catalog = Catalog(Index())
    cache = SearchCache(ttl=60)
    asyncio.run(cache.live(catalog))  # type: ignore[arg-type]
    cache.put("q", results("I10"), cache.epoch)
    now[0] += 61
    assert cache.get("q") is None


def test_the_least_recently_used_answer_goes_first() -> None:
    cache = SearchCache(entries=2)
    cache.put("a", results("A00"), cache.epoch)
    cache.put("b", results("B00"), cache.epoch)
    assert cache.get("a") is not None  # now "b" is the least recently used
    cache.put("c", results("C00"), cache.epoch)
    assert cache.get("b") is None
    assert cache.get("a") is not None and cache.get("c") is not None


@pytest.mark.parametrize("entries, ttl", [(0, 60), (100, 0)])
def test_a_cache_set_to_zero_keeps_nothing(entries: int, ttl: int) -> None:
    cache = SearchCache(entries=entries, ttl=ttl)
    cache.put("q", results("I10"), cache.epoch)
    assert cache.get("q") is None
