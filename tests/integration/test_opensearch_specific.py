"""What only the OpenSearch backend has: bulk failures, paging, raw aliases, client factories.

Everything both backends promise is in ``test_search_contract.py``, run against each.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any
from uuid import uuid4

import pytest

from services.lookup.search.documents import CODES, CodeDocument
from services.shared.search.model import (
    Checkpoint,
    DocumentType,
    IndexChange,
    Indexed,
    SearchIndex,
)
from services.shared.search.opensearch import (
    OpenSearchCatalog,
    OpenSearchIndex,
    OpenSearchWriteError,
)
from tests.servers.opensearch import start_opensearch

pytestmark = pytest.mark.integration


def icd(code: str, title: str, *, billable: bool = True) -> CodeDocument:
    return CodeDocument(
        system="ICD10CM",
        code=code,
        title=title,
        billable=billable,
        kind="code" if billable else "category",
        chapter="9",
        parent=None if "." not in code else code.split(".")[0],
        version=1,
    )


DOCS = [
    icd("I21", "Acute myocardial infarction", billable=False),
    icd("I21.4", "Non-ST elevation (NSTEMI) myocardial infarction"),
    icd("I21.9", "Acute myocardial infarction, unspecified"),
    icd("I21.A1", "Myocardial infarction type 2"),
    icd("I25.2", "Old myocardial infarction"),
    icd("I10", "Essential (primary) hypertension"),
    icd("I50.9", "Heart failure, unspecified"),
]


def checkpoint(position: int) -> Checkpoint:
    return Checkpoint(consumer="search", source="codes", position=position, cursor=position * 10)


async def seed(index: SearchIndex) -> None:
    await index.write(IndexChange(upserts=list(DOCS)), checkpoint(1))


@pytest.fixture(scope="module")
def opensearch_url() -> Iterator[str]:
    with start_opensearch() as url:
        yield url


@asynccontextmanager
async def fresh_catalog(
    opensearch_url: str, doc_type: DocumentType[CodeDocument] = CODES
) -> AsyncIterator[OpenSearchCatalog]:
    """A fresh alias prefix per test, so tests share the server but not indexes."""
    catalog = OpenSearchCatalog(opensearch_url, doc_type, prefix=f"test-{uuid4().hex[:12]}")
    try:
        yield catalog
    finally:
        await catalog.close()


@pytest.fixture
async def catalog(opensearch_url: str) -> AsyncIterator[OpenSearchCatalog]:
    async with fresh_catalog(opensearch_url) as catalog:
        yield catalog


@pytest.fixture
async def index(catalog: OpenSearchCatalog) -> SearchIndex:
    live = await catalog.live()
    await seed(live)
    return live


async def aliases(catalog: OpenSearchCatalog) -> dict[str, list[str]]:
    response = await catalog._client().indices.get_alias(index=f"{catalog.prefix}-v*")
    return {name: sorted(body["aliases"]) for name, body in sorted(response.items())}


class BillableMaybe:
    """Code documents as CODES indexes them, but X99 says it is billable "maybe": no
    boolean field takes that, so OpenSearch refuses that one item of a bulk write. (A
    CodeDocument itself cannot hold it: compiled, it checks its fields' types.)"""

    schema = CODES.schema

    def index(self, doc: CodeDocument) -> Indexed:
        indexed = CODES.index(doc)
        if doc.code != "X99":
            return indexed
        return replace(indexed, keywords={**indexed.keywords, "billable": "maybe"})

    def load(self, stored: Mapping[str, Any]) -> CodeDocument:
        return CODES.load(stored)


async def test_failed_bulk_item_raises_and_keeps_checkpoint(opensearch_url: str) -> None:
    async with fresh_catalog(opensearch_url, BillableMaybe()) as catalog:
        index = await catalog.live()
        await seed(index)
        broken = replace(DOCS[0], code="X99")
        with pytest.raises(OpenSearchWriteError, match="X99"):
            await index.write(IndexChange(upserts=[DOCS[1], broken]), checkpoint(9))
        assert await index.checkpoint("search", "codes") == checkpoint(1)


async def test_documents_pages_through_everything(index: OpenSearchIndex) -> None:
    expected = sorted(DOCS, key=lambda d: d.doc_id)
    assert await index.documents(page=3) == expected  # 7 documents: pages of 3, 3, 1
    assert await index.documents(page=len(DOCS)) == expected  # a full last page


async def test_live_names_versions_after_the_prefix(catalog: OpenSearchCatalog) -> None:
    first = await catalog.live()
    assert first.name == f"{catalog.prefix}-v1"
    assert await aliases(catalog) == {first.name: [catalog.prefix]}


async def test_promote_leaves_the_alias_on_one_version(
    catalog: OpenSearchCatalog, index: SearchIndex
) -> None:
    new = await catalog.create_version()
    newer = await catalog.create_version()  # a rebuild still in progress: kept, not aliased
    await new.write(IndexChange(upserts=DOCS[:3]), checkpoint(7))
    await catalog.promote(new)
    assert await aliases(catalog) == {new.name: [catalog.prefix], newer.name: []}
    # Searching through the alias itself answers from the promoted version.
    response = await catalog._client().count(index=catalog.prefix)
    assert response["count"] == 3
    await catalog.promote(new)  # idempotent at the alias level too
    assert await aliases(catalog) == {new.name: [catalog.prefix], newer.name: []}


async def test_promote_rejects_foreign_index(catalog: OpenSearchCatalog) -> None:
    foreign = OpenSearchIndex(catalog._client, "elsewhere-v1", CODES, checkpoints="elsewhere-cp")
    with pytest.raises(ValueError, match="not a version"):
        await catalog.promote(foreign)


async def test_catalog_accepts_client_factory(opensearch_url: str) -> None:
    from opensearchpy import AsyncOpenSearch

    built: list[AsyncOpenSearch] = []

    def factory() -> AsyncOpenSearch:
        built.append(AsyncOpenSearch(hosts=[opensearch_url]))
        return built[-1]

    catalog = OpenSearchCatalog(factory, CODES, prefix=f"test-{uuid4().hex[:12]}")
    assert built == []  # nothing is built until first use
    try:
        live = await catalog.live()
        await seed(live)
        assert await live.count() == len(DOCS)
        assert len(built) == 1
    finally:
        await catalog.close()
