"""One view of an embedded index for the whole of a search (services.shared.search.snapshots):
its plans see the index as the first saw it, and each document is read once, however many
plans find it. Tantivy only: an OpenSearch search reads its documents with its hits, and
is no snapshot (its catalog says so)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from services.lookup.search.documents import CODES, CodeDocument
from services.lookup.search.engine import search
from services.shared.search.embedded import TantivyCatalog
from services.shared.search.model import Checkpoint, IndexChange, Indexed, SearchIndex
from services.shared.search.snapshots import one_snapshot
from tests.integration.test_search_contract import DOCS, seed
from tests.integration.test_search_generic import POSTS, JobPost, JobPosts, search_plan

pytestmark = pytest.mark.integration


class CountedPosts(JobPosts):
    """Job posts that note each one read back from the store."""

    def __init__(self) -> None:
        self.loaded: list[str] = []

    def load(self, stored: Mapping[str, Any]) -> JobPost:
        post = super().load(stored)
        self.loaded.append(post.post_id)
        return post


@pytest.fixture
async def posts(tmp_path: Path) -> AsyncIterator[tuple[SearchIndex[JobPost], CountedPosts]]:
    counted = CountedPosts()
    catalog = TantivyCatalog(tmp_path / "jobs", counted, alias="jobs")
    live = await catalog.live()
    await live.write(IndexChange(upserts=POSTS), Checkpoint("jobs", "posts", 5, 5))
    yield live, counted
    await catalog.close()


PLANS = [search_plan("python"), search_plan("python engineer"), search_plan("engineer")]


async def test_in_a_snapshot_each_document_is_read_once_whatever_finds_it(
    posts: tuple[SearchIndex[JobPost], CountedPosts],
) -> None:
    index, counted = posts
    alone = await index.candidates_each(PLANS)
    found = [p.post_id for c in alone for p in c.documents]
    assert len(found) > len(set(found))  # the plans find some posts twice
    assert sorted(counted.loaded) == sorted(found)  # and, alone, read them twice

    counted.loaded.clear()
    with one_snapshot():
        shared = await index.candidates_each(PLANS)
        again = await index.candidates(PLANS[0])
    assert shared == alone and again == alone[0]  # the same answers
    assert sorted(counted.loaded) == sorted(set(found))  # each read once


async def test_a_snapshot_answers_from_the_index_as_its_first_plan_saw_it(
    posts: tuple[SearchIndex[JobPost], CountedPosts],
) -> None:
    index, _ = posts
    nurse = JobPost("j6", "Nurse", "Day shifts.", "Clinic", "Paris", False, POSTS[2].posted)
    with one_snapshot():
        before = await index.candidates(search_plan("nurse"))
        await index.write(IndexChange(upserts=[nurse]), Checkpoint("jobs", "posts", 6, 6))
        for _ in range(100):  # until searches outside it see the commit
            if await index.count() == len(POSTS) + 1:
                break
            await asyncio.sleep(0.05)
        assert await index.count() == len(POSTS) + 1
        during = await index.candidates(search_plan("nurse"))
        facets = await index.facets(search_plan("nurse"))
    after = await index.candidates(search_plan("nurse"))
    assert before.total == during.total == 1
    assert dict(facets["locations"]) == {"Berlin": 1}
    assert after.total == 2


class CountedCodes:
    """Lookup's code entries, noting each one read back from the store (a wrapper: the
    compiled ``CodeDocuments`` takes no subclass)."""

    schema = CODES.schema

    def __init__(self) -> None:
        self.loaded: list[str] = []

    def index(self, doc: CodeDocument) -> Indexed:
        return CODES.index(doc)

    def load(self, stored: Mapping[str, Any]) -> CodeDocument:
        doc = CODES.load(stored)
        self.loaded.append(doc.doc_id)
        return doc


async def test_a_lookup_search_reads_each_entry_once(tmp_path: Path) -> None:
    """A query no entry holds whole sends lookup's search several plans (each word alone,
    the entries marked the default for each, any word), which find entries again."""
    counted = CountedCodes()
    catalog = TantivyCatalog(tmp_path / "search", counted)
    try:
        await seed(await catalog.live(), DOCS)
        await search(catalog, "warm up")  # the vocabulary reads every entry once
        counted.loaded.clear()
        found = await search(catalog, "infarction hypertension")
        assert {d.code for d in found.documents} >= {"I21.9", "I10"}
        assert counted.loaded, "the search read entries"
        assert len(counted.loaded) == len(set(counted.loaded))
    finally:
        await catalog.close()
