"""The shared search layer on its own: a product that is not lookup (a job board) indexes
and searches its own document type, with its own ranking, on both backends, through
services/shared/search alone.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
import tantivy

from services.shared.search.embedded import TantivyCatalog
from services.shared.search.embedded.index import STORE_BLOCK, TantivyIndex
from services.shared.search.embedded.layout import WORDS, analyzer
from services.shared.search.model import (
    Checkpoint,
    FacetGroup,
    IndexChange,
    Indexed,
    KeywordField,
    QueryPlan,
    Schema,
    SearchCatalog,
    SearchIndex,
    TextField,
)
from services.shared.search.opensearch import OpenSearchCatalog
from services.shared.search.text import stems, words
from tests.servers.opensearch import start_opensearch

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class JobPost:
    post_id: str
    title: str
    description: str
    company: str
    location: str
    remote: bool
    posted: date


JOB_SCHEMA = Schema(
    name="jobs",
    text=(TextField("title", 3.0), TextField("description"), TextField("company", 1.5)),
    keywords=(KeywordField("location"), KeywordField("remote", bool)),
    facets=(
        FacetGroup("locations", ("location",), "location"),
        FacetGroup("remote", ("remote",), "remote"),
    ),
)


class JobPosts:
    schema = JOB_SCHEMA

    def index(self, post: JobPost) -> Indexed:
        return Indexed(
            doc_id=post.post_id,
            text={
                "title": (post.title,),
                "description": (post.description,),
                "company": (post.company,),
            },
            keywords={"location": post.location, "remote": post.remote},
            stored={
                "post_id": post.post_id, "title": post.title, "description": post.description,
                "company": post.company, "location": post.location, "remote": post.remote,
                "posted": post.posted.isoformat(),
            },
        )  # fmt: skip

    def load(self, stored: Mapping[str, Any]) -> JobPost:
        return JobPost(**{**stored, "posted": date.fromisoformat(stored["posted"])})


JOBS = JobPosts()

POSTS = [
    JobPost("j1", "Senior Python Engineer", "Build APIs in Python.", "Acme", "Berlin", True,
            date(2026, 11, 1)),
    JobPost("j2", "Python Developer", "Data pipelines, some Go.", "Globex", "Paris", False,
            date(2026, 11, 20)),
    JobPost("j3", "Nurse", "Night shifts; Python not required.", "Clinic", "Berlin", False,
            date(2026, 11, 25)),
    JobPost("j4", "Go Engineer", "Distributed systems.", "Initech", "Lisbon", True,
            date(2026, 10, 2)),
    JobPost("j5", "Engineering Manager", "Lead the engineers of a Python team.", "Acme",
            "Berlin", True, date(2026, 9, 12)),
]  # fmt: skip


def rank_jobs(asked: tuple[str, ...], posts: list[JobPost]) -> list[JobPost]:
    """The job board's own ranking: every asked word in the title first, newest first."""
    wanted = {s for w in asked for s in stems(w)}

    def in_title(post: JobPost) -> bool:
        held = stems(post.title)
        begun = any(w.startswith(asked[-1]) for w in words(post.title)) if asked else False
        return all(s in held for s in wanted) or (len(wanted) == 1 and begun)

    return sorted(posts, key=lambda p: (not in_title(p), -p.posted.toordinal()))


def search_plan(text: str, **filters: tuple[str | bool, ...]) -> QueryPlan:
    return QueryPlan(words=tuple(words(text)), filters=tuple(filters.items()))


@pytest.fixture(scope="module")
def opensearch_url() -> Iterator[str]:
    with start_opensearch() as url:
        yield url


@pytest.fixture(params=["tantivy", "opensearch"])
async def jobs(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[SearchCatalog[JobPost]]:
    catalog: SearchCatalog[JobPost]
    if request.param == "tantivy":
        catalog = TantivyCatalog(tmp_path / "jobs", JOBS, alias="jobs")
    else:
        url: str = request.getfixturevalue("opensearch_url")
        catalog = OpenSearchCatalog(url, JOBS, prefix=f"jobs-{uuid4().hex[:8]}")
    live = await catalog.live()
    await live.write(IndexChange(upserts=POSTS), Checkpoint("jobs", "posts", 5, 5))
    yield catalog
    await catalog.close()


async def test_job_posts_are_found_by_words_and_ranked_by_the_board(
    jobs: SearchCatalog[JobPost],
) -> None:
    index = await jobs.live()
    found = await index.candidates(search_plan("python"))
    assert found.total == 4
    ranked = rank_jobs(("python",), found.documents)
    # Titles with the word first (newest first), then descriptions (newest first).
    assert [p.post_id for p in ranked] == ["j2", "j1", "j3", "j5"]
    assert ranked[0] == POSTS[1]  # read back whole, date and all


async def test_the_last_word_is_a_prefix_and_stems_match(jobs: SearchCatalog[JobPost]) -> None:
    index = await jobs.live()
    typing = await index.candidates(search_plan("python engin"))
    assert sorted(p.post_id for p in typing.documents) == ["j1", "j5"]
    stemmed = await index.candidates(search_plan("engineers"))  # "Engineer", "engineers"
    assert sorted(p.post_id for p in stemmed.documents) == ["j1", "j4", "j5"]


async def test_filters_and_facets_of_the_board_own_fields(jobs: SearchCatalog[JobPost]) -> None:
    index = await jobs.live()
    remote = await index.candidates(search_plan("python", remote=(True,)))
    assert sorted(p.post_id for p in remote.documents) == ["j1", "j5"]
    facets = await index.facets(search_plan("python", location=("Berlin",)))
    # Each group ignores its own filter: every location of a "python" post is listed.
    assert dict(facets["locations"]) == {"Berlin": 3, "Paris": 1}
    assert dict(facets["remote"]) == {True: 2, False: 1}


async def test_rebuild_with_swap_and_checkpoints(jobs: SearchCatalog[JobPost]) -> None:
    old = await jobs.live()
    assert await old.checkpoint("jobs", "posts") == Checkpoint("jobs", "posts", 5, 5)
    fresh = await jobs.create_version()
    assert await fresh.checkpoint("jobs", "posts") is None
    await fresh.write(IndexChange(upserts=POSTS[:2]), Checkpoint("jobs", "posts", 2, 2))
    await jobs.promote(fresh)
    live = await jobs.live()
    assert live.name == fresh.name and await live.count() == 2
    assert [p.post_id for p in await live.documents()] == ["j1", "j2"]


async def test_the_embedded_store_compresses_small_blocks(tmp_path: Path) -> None:
    """Each new version is created with small document store blocks (STORE_BLOCK), which
    tantivy keeps through its commits; documents read back whole."""

    def block(index: SearchIndex[JobPost]) -> int:
        assert isinstance(index, TantivyIndex)
        meta = json.loads((index.path / "meta.json").read_text())
        assert meta["segments"]
        return int(meta["index_settings"]["docstore_blocksize"])

    catalog = TantivyCatalog(tmp_path / "jobs", JOBS, alias="jobs")
    try:
        live = await catalog.live()
        for n, post in enumerate(POSTS, start=1):  # a commit, and a segment, each
            await live.write(IndexChange(upserts=[post]), Checkpoint("jobs", "posts", n, n))
        assert block(live) == STORE_BLOCK
        fresh = await catalog.create_version()
        await fresh.write(IndexChange(upserts=POSTS), Checkpoint("jobs", "posts", 5, 5))
        assert block(fresh) == STORE_BLOCK
        await catalog.promote(fresh)
        assert await (await catalog.live()).documents() == sorted(POSTS, key=lambda p: p.post_id)
    finally:
        await catalog.close()


def _stored_field(index: SearchIndex[JobPost]) -> dict[str, Any]:
    """How the version's ``meta.json`` declares its stored JSON (``_doc``)."""
    assert isinstance(index, TantivyIndex)
    meta = json.loads((index.path / "meta.json").read_text())
    return dict(next(f for f in meta["schema"] if f["name"] == "_doc"))


def _stored_types(index: SearchIndex[JobPost]) -> set[type]:
    """The types of the stored JSON values as tantivy holds them, whatever the schema says
    (its store keeps each value's own type)."""
    assert isinstance(index, TantivyIndex)
    searcher = tantivy.Index.open(str(index.path)).searcher()
    hits = searcher.search(tantivy.Query.all_query(), 100).hits
    return {type(searcher.doc(address).get_first("_doc")) for _, address in hits}


async def test_a_new_version_stores_its_json_as_text_never_searched(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    catalog = TantivyCatalog(tmp_path / "jobs", JOBS, alias="jobs")
    try:
        with caplog.at_level("WARNING", logger="services.shared.search.embedded.index"):
            live = await catalog.live()
        assert "earlier version" not in caplog.text
        await live.write(IndexChange(upserts=POSTS), Checkpoint("jobs", "posts", 5, 5))
        field = _stored_field(live)
        assert (field["type"], field["options"].get("indexing")) == ("text", None)
        assert _stored_types(live) == {str}
        assert await live.checkpoint("jobs", "posts") == Checkpoint("jobs", "posts", 5, 5)
        assert await live.documents() == sorted(POSTS, key=lambda p: p.post_id)
    finally:
        await catalog.close()


async def test_a_version_that_stores_its_json_as_bytes_is_still_written_and_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A version created before the stored JSON was text (its store's blocks small, its
    documents kept in doc id order) keeps it as bytes: written so, read back whole, until
    a rebuild replaces it; opening it says so."""
    catalog = TantivyCatalog(tmp_path / "jobs", JOBS, alias="jobs")
    live = await catalog.live()
    assert isinstance(live, TantivyIndex)
    meta_file = live.path / "meta.json"
    meta = json.loads(meta_file.read_text())
    for field in meta["schema"]:
        if field["name"] == "_doc":  # as layout.tantivy_schema declared it before
            field["type"] = "bytes"
            field["options"] = {"indexed": False, "fieldnorms": False, "fast": False,
                                "stored": True}
    meta["index_settings"]["docstore_blocksize"] = 16384  # tantivy's own
    del meta["index_settings"]["sort_by_field"]
    await catalog.close()
    meta_file.write_text(json.dumps(meta))
    catalog = TantivyCatalog(tmp_path / "jobs", JOBS, alias="jobs")
    try:
        with caplog.at_level("WARNING", logger="services.shared.search.embedded.index"):
            live = await catalog.live()
        assert "blocks of 16384 bytes" in caplog.text
        assert "stored JSON as bytes" in caplog.text
        assert "in the order written" in caplog.text
        await live.write(IndexChange(upserts=POSTS[:3]), Checkpoint("jobs", "posts", 3, 3))
        await live.write(IndexChange(upserts=POSTS[3:]), Checkpoint("jobs", "posts", 5, 5))
        assert _stored_field(live)["type"] == "bytes"
        assert _stored_types(live) == {bytes}
        assert await live.checkpoint("jobs", "posts") == Checkpoint("jobs", "posts", 5, 5)
        assert await live.documents() == sorted(POSTS, key=lambda p: p.post_id)
        assert await live.get(POSTS[0].post_id) == POSTS[0]
    finally:
        await catalog.close()


async def test_a_version_laid_out_with_a_field_since_dropped_is_searched_by_its_own(
    tmp_path: Path,
) -> None:
    """tantivy queries name fields by their number in a schema. A version created while
    the layout had one more field (``_digest``, after the stored JSON, until readers kept
    no documents) numbers every later field one higher: searched by its own schema, it
    finds, filters, counts and checkpoints as a new one does."""
    catalog = TantivyCatalog(tmp_path / "jobs", JOBS, alias="jobs")
    live = await catalog.live()
    assert isinstance(live, TantivyIndex)
    meta_file = live.path / "meta.json"
    meta = json.loads(meta_file.read_text())
    after = next(i for i, f in enumerate(meta["schema"]) if f["name"] == "_doc") + 1
    meta["schema"].insert(after, {"name": "_digest", "type": "u64", "options": {
        "indexed": False, "fieldnorms": False, "fast": True, "stored": False}})
    await catalog.close()
    meta_file.write_text(json.dumps(meta))
    catalog = TantivyCatalog(tmp_path / "jobs", JOBS, alias="jobs")
    try:
        live = await catalog.live()
        await live.write(IndexChange(upserts=POSTS), Checkpoint("jobs", "posts", 5, 5))
        found = await live.candidates(search_plan("python"))
        assert sorted(p.post_id for p in found.documents) == ["j1", "j2", "j3", "j5"]
        remote = await live.candidates(search_plan("python", remote=(True,)))
        assert sorted(p.post_id for p in remote.documents) == ["j1", "j5"]
        facets = await live.facets(search_plan("python", location=("Berlin",)))
        assert dict(facets["locations"]) == {"Berlin": 3, "Paris": 1}
        assert await live.checkpoint("jobs", "posts") == Checkpoint("jobs", "posts", 5, 5)
        assert await live.get(POSTS[0].post_id) == POSTS[0]
    finally:
        await catalog.close()


def _segments(index: SearchIndex[JobPost]) -> int:
    assert isinstance(index, TantivyIndex)
    return len(json.loads((index.path / "meta.json").read_text())["segments"])


async def _written_one_by_one(root: Path) -> Path:
    """The posts written to a new catalog one commit (and segment) each, the catalog
    closed again; the live version's directory."""
    catalog = TantivyCatalog(root, JOBS, alias="jobs")
    live = await catalog.live()
    for n, post in enumerate(POSTS, start=1):
        await live.write(IndexChange(upserts=[post]), Checkpoint("jobs", "posts", n, n))
    assert isinstance(live, TantivyIndex)
    await catalog.close()
    return live.path


async def test_compacting_writes_the_version_again_as_one_segment(tmp_path: Path) -> None:
    catalog = TantivyCatalog(tmp_path / "jobs", JOBS, alias="jobs")
    try:
        live = await catalog.live()
        for n, post in enumerate(POSTS, start=1):  # a commit, and a segment, each
            await live.write(IndexChange(upserts=[post]), Checkpoint("jobs", "posts", n, n))
        assert _segments(live) > 1
        await live.compact()
        assert _segments(live) == 1
        assert await live.documents() == sorted(POSTS, key=lambda p: p.post_id)
        assert await live.checkpoint("jobs", "posts") == Checkpoint("jobs", "posts", 5, 5)
    finally:
        await catalog.close()


_COMPACT_IN_A_CHILD = """
import asyncio, sys
from pathlib import Path
from services.shared.search.embedded import TantivyCatalog
from tests.integration.test_search_generic import JOBS

async def main() -> None:
    catalog = TantivyCatalog(Path(sys.argv[1]), JOBS, alias="jobs")
    await (await catalog.live()).compact()

asyncio.run(main())
"""


async def test_a_compaction_killed_before_its_commit_leaves_the_version_as_it_was(
    tmp_path: Path,
) -> None:
    path = await _written_one_by_one(tmp_path / "jobs")
    segments = len(json.loads((path / "meta.json").read_text())["segments"])
    env = {**os.environ, "MEDCODE_FAULTS": "search.compact.before_commit:1"}
    env.pop("MEDCODE_ENV", None)
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _COMPACT_IN_A_CHILD, str(tmp_path / "jobs"),
        env=env, cwd=Path(__file__).parents[2],
    )
    assert await child.wait() == -signal.SIGKILL
    catalog = TantivyCatalog(tmp_path / "jobs", JOBS, alias="jobs")
    try:
        live = await catalog.live()
        assert _segments(live) == segments
        assert await live.documents() == sorted(POSTS, key=lambda p: p.post_id)
        assert await live.checkpoint("jobs", "posts") == Checkpoint("jobs", "posts", 5, 5)
        await live.compact()  # (the killed writer's lock is gone with its process)
        assert _segments(live) == 1
        assert await live.documents() == sorted(POSTS, key=lambda p: p.post_id)
    finally:
        await catalog.close()


async def test_a_version_with_a_checkpoint_that_does_not_name_itself_is_not_compacted(
    tmp_path: Path,
) -> None:
    """(Written before checkpoints named themselves: compacting could not write it back.)"""
    path = await _written_one_by_one(tmp_path / "jobs")
    index = tantivy.Index.open(str(path))
    index.register_tokenizer(WORDS, analyzer())
    writer = index.writer(15_000_000, 1)
    old = tantivy.Document()
    old.add_text("_cp", "jobs|older")
    old.add_text("_doc", json.dumps({"position": 7, "cursor": 70}))
    writer.add_document(old)
    writer.commit()
    writer.wait_merging_threads()
    catalog = TantivyCatalog(tmp_path / "jobs", JOBS, alias="jobs")
    try:
        live = await catalog.live()
        segments = _segments(live)
        await live.compact()
        assert _segments(live) == segments > 1
        assert await live.checkpoint("jobs", "older") == Checkpoint("jobs", "older", 7, 70)
        assert len(await live.documents()) == len(POSTS)
    finally:
        await catalog.close()


def test_the_shared_layer_needs_no_product() -> None:
    """Importing every shared search module loads nothing of lookup's."""
    code = (
        "import sys, services.shared.search.embedded, services.shared.search.opensearch,"
        " services.shared.search.cache, services.shared.search.versions,"
        " services.shared.search.text;"
        " loaded = [m for m in sys.modules if m.startswith('services.') and"
        " not m.startswith('services.shared')]; assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
