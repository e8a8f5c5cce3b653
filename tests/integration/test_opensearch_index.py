"""OpenSearchCatalog / OpenSearchIndex against an OpenSearch-protocol server (osmem).

The ``candidates`` tests are plain async functions over an ``index`` fixture so they can
move into the shared backend contract suite unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from uuid import uuid4

import pytest

from services.shared.search import opensearch as opensearch_module
from services.shared.search.model import (
    Checkpoint,
    CodeDocument,
    IndexChange,
    QueryPlan,
    SearchIndex,
)
from services.shared.search.opensearch import (
    OpenSearchCatalog,
    OpenSearchIndex,
    OpenSearchWriteError,
)
from tests.servers.opensearch import start_opensearch

pytestmark = pytest.mark.integration

ICD = "ICD10CM"


def icd(
    code: str,
    title: str,
    *,
    billable: bool = True,
    chapter: str | None = "9",
    parent: str | None = None,
    terms: tuple[str, ...] = (),
    kind: str = "code",
) -> CodeDocument:
    return CodeDocument(
        system=ICD,
        code=code,
        title=title,
        billable=billable,
        kind=kind,
        chapter=chapter,
        parent=parent,
        terms=terms,
        version=1,
    )


DOCS = [
    icd("I21", "Acute myocardial infarction", billable=False, kind="category"),
    icd(
        "I21.9",
        "Acute myocardial infarction, unspecified",
        parent="I21",
        terms=("Myocardial infarction (acute) NOS",),
    ),
    icd("I21.A1", "Myocardial infarction type 2", parent="I21"),
    icd("I25.2", "Old myocardial infarction"),
    icd("I10", "Essential (primary) hypertension", terms=("High blood pressure",)),
    icd(
        "R03.0",
        "Elevated blood-pressure reading, without diagnosis of hypertension",
        chapter="18",
    ),
    icd("E11", "Type 2 diabetes mellitus", billable=False, chapter="4", kind="category"),
    icd("E11.65", "Type 2 diabetes mellitus with hyperglycemia", chapter="4", parent="E11"),
    icd("M35.00", "Sjögren syndrome, unspecified", chapter="13"),
    CodeDocument(
        system="HCPCS",
        code="E0100",
        title="Cane, includes canes of all materials, adjustable or fixed, with tip",
        billable=True,
        kind="code",
    ),
]


def checkpoint(position: int, *, consumer: str = "search", source: str = "codes") -> Checkpoint:
    return Checkpoint(consumer=consumer, source=source, position=position, cursor=position * 10)


async def seed(index: SearchIndex, docs: list[CodeDocument] = DOCS) -> None:
    await index.write(IndexChange(upserts=list(docs)), checkpoint(1))


async def codes(index: SearchIndex, plan: QueryPlan) -> list[str]:
    return [doc.code for doc in (await index.candidates(plan)).documents]


@pytest.fixture(scope="module")
def opensearch_url() -> Iterator[str]:
    with start_opensearch() as url:
        yield url


@pytest.fixture
async def catalog(opensearch_url: str) -> AsyncIterator[OpenSearchCatalog]:
    """A fresh alias prefix per test, so tests share the server but not indexes."""
    catalog = OpenSearchCatalog(opensearch_url, prefix=f"test-{uuid4().hex[:12]}")
    yield catalog
    await catalog.close()


@pytest.fixture
async def index(catalog: OpenSearchCatalog) -> SearchIndex:
    live = await catalog.live()
    await seed(live)
    return live


# --- candidates: the backend contract ---------------------------------------------


async def test_code_prefix_orders_exact_then_by_length(index: SearchIndex) -> None:
    result = await index.candidates(QueryPlan(words=(), code="I21"))
    assert [d.code for d in result.documents] == ["I21", "I21.9", "I21.A1"]
    assert result.total == 3


async def test_full_code_matches_only_itself(index: SearchIndex) -> None:
    assert await codes(index, QueryPlan(words=(), code="I219")) == ["I21.9"]


async def test_unknown_code_matches_nothing(index: SearchIndex) -> None:
    result = await index.candidates(QueryPlan(words=(), code="Z99"))
    assert result.documents == [] and result.total == 0


async def test_match_all_requires_every_word(index: SearchIndex) -> None:
    found = await codes(index, QueryPlan(words=("acute", "myocardial")))
    assert sorted(found) == ["I21", "I21.9"]


async def test_match_any_accepts_one_word(index: SearchIndex) -> None:
    result = await index.candidates(QueryPlan(words=("acute", "old"), match_all=False))
    assert sorted(d.code for d in result.documents) == ["I21", "I21.9", "I25.2"]
    assert result.total == 3


async def test_last_word_matches_as_prefix(index: SearchIndex) -> None:
    assert sorted(await codes(index, QueryPlan(words=("diab",)))) == ["E11", "E11.65"]
    assert sorted(await codes(index, QueryPlan(words=("type", "diab")))) == ["E11", "E11.65"]
    assert await codes(index, QueryPlan(words=("hyperglyc",))) == ["E11.65"]


async def test_only_the_last_word_is_a_prefix(index: SearchIndex) -> None:
    result = await index.candidates(QueryPlan(words=("diab", "type")))
    assert result.documents == [] and result.total == 0


async def test_words_are_stemmed(index: SearchIndex) -> None:
    found = await codes(index, QueryPlan(words=("infarctions", "acute")))
    assert sorted(found) == ["I21", "I21.9"]


async def test_accents_are_folded(index: SearchIndex) -> None:
    assert await codes(index, QueryPlan(words=("sjogren",))) == ["M35.00"]


async def test_terms_are_searchable(index: SearchIndex) -> None:
    assert await codes(index, QueryPlan(words=("nos",))) == ["I21.9"]
    assert await codes(index, QueryPlan(words=("high", "blood"))) == ["I10"]


async def test_title_outranks_terms(index: SearchIndex) -> None:
    # "pressure" is in R03.0's title but only in I10's terms.
    assert await codes(index, QueryPlan(words=("pressure",))) == ["R03.0", "I10"]


async def test_code_or_words(index: SearchIndex) -> None:
    result = await index.candidates(QueryPlan(words=("diabetes",), code="I21"))
    found = [d.code for d in result.documents]
    assert found[:3] == ["I21", "I21.9", "I21.A1"]
    assert sorted(found[3:]) == ["E11", "E11.65"]
    assert result.total == 5


async def test_doc_matching_code_and_words_is_listed_once(index: SearchIndex) -> None:
    result = await index.candidates(QueryPlan(words=("acute",), code="I21"))
    assert [d.code for d in result.documents] == ["I21", "I21.9", "I21.A1"]
    assert result.total == 3


async def test_window_limits_documents_not_total(index: SearchIndex) -> None:
    result = await index.candidates(QueryPlan(words=("diabetes",), code="I21", window=4))
    assert [d.code for d in result.documents][:3] == ["I21", "I21.9", "I21.A1"]
    assert len(result.documents) == 4
    assert result.total == 5


async def test_system_filter(index: SearchIndex) -> None:
    assert await codes(index, QueryPlan(words=(), code="E", systems=("HCPCS",))) == ["E0100"]
    icd_only = await codes(index, QueryPlan(words=(), code="E", systems=(ICD,)))
    assert icd_only == ["E11", "E11.65"]
    both = await codes(index, QueryPlan(words=(), code="E", systems=(ICD, "HCPCS")))
    assert sorted(both) == ["E0100", "E11", "E11.65"]


async def test_billable_filter(index: SearchIndex) -> None:
    found = await codes(index, QueryPlan(words=(), code="I21", billable_only=True))
    assert found == ["I21.9", "I21.A1"]


async def test_chapter_filter(index: SearchIndex) -> None:
    assert sorted(await codes(index, QueryPlan(words=("type",), chapter="4"))) == [
        "E11",
        "E11.65",
    ]
    assert await codes(index, QueryPlan(words=("type",), chapter="9")) == ["I21.A1"]


async def test_empty_plan_matches_nothing(index: SearchIndex) -> None:
    result = await index.candidates(QueryPlan(words=()))
    assert result.documents == [] and result.total == 0


async def test_candidates_round_trip_documents(index: SearchIndex) -> None:
    (doc,) = (await index.candidates(QueryPlan(words=(), code="I219"))).documents
    assert doc == DOCS[1]
    assert isinstance(doc.terms, tuple)


# --- documents, get, count ----------------------------------------------------------


async def test_get_count_documents(index: SearchIndex) -> None:
    assert await index.get("ICD10CM:I21.9") == DOCS[1]
    assert await index.get("HCPCS:E0100") == DOCS[-1]
    assert await index.get("ICD10CM:NOPE") is None
    assert await index.count() == len(DOCS)
    assert await index.documents() == sorted(DOCS, key=lambda d: d.doc_id)


async def test_documents_pages_through_everything(
    index: SearchIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(opensearch_module, "_PAGE", 3)
    assert await index.documents() == sorted(DOCS, key=lambda d: d.doc_id)


# --- writes and checkpoints ---------------------------------------------------------


async def test_write_stores_checkpoint(catalog: OpenSearchCatalog) -> None:
    index = await catalog.live()
    assert await index.checkpoint("search", "codes") is None
    await index.write(IndexChange(upserts=DOCS[:2]), checkpoint(5))
    assert await index.checkpoint("search", "codes") == checkpoint(5)
    assert await index.checkpoint("search", "other") is None
    await index.write(IndexChange(), checkpoint(6))  # an empty change still advances
    assert await index.checkpoint("search", "codes") == checkpoint(6)
    assert await index.count() == 2


async def test_rewriting_the_same_change_is_idempotent(index: SearchIndex) -> None:
    before = await index.documents()
    await seed(index)
    await seed(index)
    assert await index.documents() == before
    assert await index.count() == len(DOCS)


async def test_upsert_replaces_document(index: SearchIndex) -> None:
    renamed = replace(DOCS[0], title="Acute heart attack", version=2)
    await index.write(IndexChange(upserts=[renamed]), checkpoint(2))
    assert await index.get(renamed.doc_id) == renamed
    assert await codes(index, QueryPlan(words=("heart",))) == ["I21"]


async def test_deletions_ignore_missing_documents(index: SearchIndex) -> None:
    change = IndexChange(deletions=["ICD10CM:I21.9", "ICD10CM:NOT-THERE"])
    await index.write(change, checkpoint(2))
    assert await index.get("ICD10CM:I21.9") is None
    assert await index.count() == len(DOCS) - 1
    assert await codes(index, QueryPlan(words=(), code="I21")) == ["I21", "I21.A1"]
    assert await index.checkpoint("search", "codes") == checkpoint(2)


async def test_failed_bulk_item_raises_and_keeps_checkpoint(index: SearchIndex) -> None:
    broken = replace(DOCS[0], code="X99", version=2**40)  # overflows the integer field
    with pytest.raises(OpenSearchWriteError, match="X99"):
        await index.write(IndexChange(upserts=[DOCS[1], broken]), checkpoint(9))
    assert await index.checkpoint("search", "codes") == checkpoint(1)


# --- versions and the alias ---------------------------------------------------------


async def aliases(catalog: OpenSearchCatalog) -> dict[str, list[str]]:
    client = catalog._client()
    response = await client.indices.get_alias(index=f"{catalog.prefix}-v*")
    return {name: sorted(body["aliases"]) for name, body in sorted(response.items())}


async def test_live_creates_first_version_once(catalog: OpenSearchCatalog) -> None:
    first = await catalog.live()
    assert first.name == f"{catalog.prefix}-v1"
    assert (await catalog.live()).name == first.name
    assert await aliases(catalog) == {first.name: [catalog.prefix]}
    assert await first.count() == 0


async def test_create_version_is_empty_and_not_live(
    catalog: OpenSearchCatalog, index: SearchIndex
) -> None:
    new = await catalog.create_version()
    assert new.name == f"{catalog.prefix}-v2"
    assert await new.count() == 0
    assert (await catalog.live()).name == index.name
    assert await index.count() == len(DOCS)


async def test_promote_swaps_alias_and_drops_older(catalog: OpenSearchCatalog) -> None:
    old = await catalog.live()
    await seed(old)
    new = await catalog.create_version()
    newer = await catalog.create_version()  # a rebuild still in progress
    assert [old.name, new.name, newer.name] == [f"{catalog.prefix}-v{n}" for n in (1, 2, 3)]
    await new.write(IndexChange(upserts=DOCS[:3]), checkpoint(7))

    await catalog.promote(new)

    assert (await catalog.live()).name == new.name
    assert await aliases(catalog) == {new.name: [catalog.prefix], newer.name: []}
    assert await old.get(DOCS[0].doc_id) is None  # its index is gone
    assert await old.checkpoint("search", "codes") is None  # and its checkpoint
    assert await new.checkpoint("search", "codes") == checkpoint(7)
    # Searching through the alias now answers from the promoted version.
    response = await catalog._client().count(index=catalog.prefix)
    assert response["count"] == 3


async def test_promote_is_idempotent(catalog: OpenSearchCatalog) -> None:
    live = await catalog.live()
    await catalog.promote(live)
    await catalog.promote(live)
    assert await aliases(catalog) == {live.name: [catalog.prefix]}


async def test_promote_rejects_foreign_index(catalog: OpenSearchCatalog) -> None:
    foreign = OpenSearchIndex(catalog._client, "elsewhere-v1", checkpoints="elsewhere-cp")
    with pytest.raises(ValueError, match="not a version"):
        await catalog.promote(foreign)


async def test_versions_have_separate_checkpoints(catalog: OpenSearchCatalog) -> None:
    live = await catalog.live()
    await live.write(IndexChange(), checkpoint(3))
    new = await catalog.create_version()
    assert await new.checkpoint("search", "codes") is None
    assert await live.checkpoint("search", "codes") == checkpoint(3)


async def test_live_after_versions_without_alias(opensearch_url: str) -> None:
    """A version created before any alias existed is not made live by accident."""
    catalog = OpenSearchCatalog(opensearch_url, prefix=f"test-{uuid4().hex[:12]}")
    try:
        pending = await catalog.create_version()
        live = await catalog.live()
        assert pending.name.endswith("-v1")
        assert live.name.endswith("-v2")
    finally:
        await catalog.close()


async def test_catalog_accepts_client_factory(opensearch_url: str) -> None:
    from opensearchpy import AsyncOpenSearch

    built: list[AsyncOpenSearch] = []

    def factory() -> AsyncOpenSearch:
        built.append(AsyncOpenSearch(hosts=[opensearch_url]))
        return built[-1]

    catalog = OpenSearchCatalog(factory, prefix=f"test-{uuid4().hex[:12]}")
    assert built == []  # nothing is built until first use
    try:
        live = await catalog.live()
        await seed(live)
        assert await live.count() == len(DOCS)
        assert len(built) == 1
    finally:
        await catalog.close()
