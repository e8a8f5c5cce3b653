"""The search backend contract: every test runs against tantivy (embedded) and OpenSearch.

ARCHITECTURE: "Every adapter pair passes one shared contract test suite (the same test
functions, parametrised over both backends), so behaviour and search relevance cannot
drift apart." The ``opener`` fixture is parametrised over both backends; everything
built on it (``catalog``, ``index``, ``open_catalog``) follows, so each test below runs
once per backend. Where the backends legitimately differ (OpenSearch bulk failures,
client factories, raw alias state) see ``test_opensearch_specific.py``.

The semantics pinned here were decided by the OpenSearch backend first (see
``services.shared.search.opensearch.queries``) and documented for tantivy in
``services.shared.search.embedded.queries``. The documents are lookup's code entries;
tests/integration/test_search_generic.py indexes another document type.

The parity tests at the end index the same real ICD-10-CM entries into both backends at
once and check that the shared engine (``services.lookup.search.engine.search``) finds
the same entries from either and puts the same five first.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from uuid import uuid4

import pytest

from services.lookup.search.documents import CODES, CodeDocument, CodeFacets, code_plan
from services.lookup.search.engine import facets, search
from services.lookup.search.readings import Reading
from services.lookup.search.search_readings import keep, read
from services.shared.search.cache import SearchCache
from services.shared.search.embedded import TantivyCatalog
from services.shared.search.model import (
    Candidates,
    Checkpoint,
    IndexChange,
    QueryPlan,
    SearchCatalog,
    SearchIndex,
)
from services.shared.search.opensearch import OpenSearchCatalog
from tests.servers.opensearch import start_opensearch

pytestmark = pytest.mark.integration

BACKENDS = ["tantivy", "opensearch"]
ICD = "ICD10CM"

# Opens a catalog of the current backend over the test's store (a directory or an
# OpenSearch server); ``None`` means the backend's default alias (tantivy) or a fresh one.
Opener = Callable[[str | None], SearchCatalog]


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


@dataclass(frozen=True)
class Plan:
    """A plan as lookup states one (its filters by name), for the tests to read."""

    words: tuple[str, ...]
    code: str | None = None
    systems: tuple[str, ...] = ()
    billable_only: bool = False
    chapter: str | None = None
    match_all: bool = True
    window: int = 200

    def generic(self) -> QueryPlan:
        return code_plan(
            self.words, self.code, systems=self.systems, billable_only=self.billable_only,
            chapter=self.chapter, match_all=self.match_all, window=self.window,
        )


async def candidates(index: SearchIndex, plan: Plan) -> Candidates[CodeDocument]:
    return await index.candidates(plan.generic())


async def facets_of(index: SearchIndex, plan: Plan) -> CodeFacets:
    return CodeFacets.of(await index.facets(plan.generic()))


async def codes(index: SearchIndex, plan: Plan) -> list[str]:
    return [doc.code for doc in (await candidates(index, plan)).documents]


def fresh_alias() -> str:
    """Valid for both backends: a SQL identifier part and a lower-case index name."""
    return f"t{uuid4().hex[:12]}"


# --- fixtures: one store per test, per backend ----------------------------------------


@pytest.fixture(scope="module")
def opensearch_url() -> Iterator[str]:
    """One osmem server per module; tests keep apart by alias prefix."""
    with start_opensearch() as url:
        yield url


@pytest.fixture(params=BACKENDS)
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    if request.param == "tantivy":
        path = tmp_path / "search"  # a fresh directory per test

        def open_tantivy(alias: str | None) -> SearchCatalog:
            if alias is None:
                return TantivyCatalog(path, CODES)
            return TantivyCatalog(path, CODES, alias=alias)

        return open_tantivy
    # Asked for lazily, so `-k tantivy` never starts the server.
    url: str = request.getfixturevalue("opensearch_url")
    default = fresh_alias()  # a fresh prefix per test

    def open_opensearch(alias: str | None) -> SearchCatalog:
        return OpenSearchCatalog(url, CODES, prefix=alias or default)

    return open_opensearch


@pytest.fixture
async def open_catalog(opener: Opener) -> AsyncIterator[Opener]:
    """Open more catalogs over the same store (another process, another alias)."""
    opened: list[SearchCatalog] = []

    def open_(alias: str | None = None) -> SearchCatalog:
        opened.append(opener(alias))
        return opened[-1]

    yield open_
    for catalog in opened:
        await catalog.close()


async def test_a_whole_plan_returns_every_match_or_none(index: SearchIndex) -> None:
    """A plan asked only if it returns every match (``QueryPlan.whole``): none when more
    match than its window, with the count, counted or not; all of them when they fit."""
    for count in (True, False):
        for plan in (Plan(words=("diabetes",), code="I21", window=4),
                     Plan(words=("diabetes",), window=1), Plan(words=(), code="I21", window=2)):
            result = await index.candidates(replace(plan.generic(), whole=True, count=count))
            assert result.documents == []
            assert result.total > plan.window
    plan = replace(Plan(words=("diabetes",), code="I21", window=5).generic(), whole=True)
    result = await index.candidates(plan)
    assert [d.code for d in result.documents][:3] == ["I21", "I21.9", "I21.A1"]
    assert len(result.documents) == result.total == 5


async def test_plans_asked_together_find_what_each_finds_alone(index: SearchIndex) -> None:
    """``candidates_each``: one request or one after another, each plan's candidates in
    order, as ``candidates`` gives them: by code, by word, whole, empty, uncounted."""
    plans = [
        Plan(words=("diabetes",), code="I21", window=4).generic(),
        Plan(words=(), code="I21").generic(),
        replace(Plan(words=("diabetes",), window=1).generic(), whole=True),
        Plan(words=()).generic(),
        replace(Plan(words=("diabetes",), window=2).generic(), count=False),
        Plan(words=("acute", "infarction"), window=0).generic(),
    ]
    each = await index.candidates_each(plans)
    alone = [await index.candidates(plan) for plan in plans]
    assert [([d.code for d in c.documents], c.total) for c in each] == [
        ([d.code for d in c.documents], c.total) for c in alone
    ]
    assert [len(c.documents) for c in each] == [4, 3, 0, 0, 2, 0]
    assert await index.candidates_each([]) == []


@pytest.fixture
def catalog(open_catalog: Opener) -> SearchCatalog:
    return open_catalog(None)


@pytest.fixture
async def index(catalog: SearchCatalog) -> SearchIndex:
    live = await catalog.live()
    await seed(live)
    return live


# --- candidates: codes ------------------------------------------------------------------


async def test_code_prefix_orders_exact_then_by_length(index: SearchIndex) -> None:
    result = await candidates(index, Plan(words=(), code="I21"))
    assert [d.code for d in result.documents] == ["I21", "I21.9", "I21.A1"]
    assert result.total == 3


async def test_code_matches_of_equal_length_order_by_code(index: SearchIndex) -> None:
    more = [
        icd(
            "I21.01",
            "ST elevation (STEMI) myocardial infarction involving left main coronary artery",
            parent="I21.0",
        ),
        icd("I21.4", "Non-ST elevation (NSTEMI) myocardial infarction", parent="I21"),
        icd(
            "I21.0",
            "ST elevation (STEMI) myocardial infarction of anterior wall",
            billable=False,
            parent="I21",
            kind="category",
        ),
    ]
    await index.write(IndexChange(upserts=more), checkpoint(2))
    found = await codes(index, Plan(words=(), code="I21"))
    assert found == ["I21", "I21.0", "I21.4", "I21.9", "I21.01", "I21.A1"]


async def test_full_code_matches_only_itself(index: SearchIndex) -> None:
    assert await codes(index, Plan(words=(), code="I219")) == ["I21.9"]


async def test_unknown_code_matches_nothing(index: SearchIndex) -> None:
    result = await candidates(index, Plan(words=(), code="Z99"))
    assert result.documents == [] and result.total == 0


async def test_empty_code_is_no_code(index: SearchIndex) -> None:
    result = await candidates(index, Plan(words=(), code=""))
    assert result.documents == [] and result.total == 0
    result = await candidates(index, Plan(words=("diabetes",), code=""))
    assert sorted(d.code for d in result.documents) == ["E11", "E11.65"]
    assert result.total == 2


async def test_empty_plan_matches_nothing(index: SearchIndex) -> None:
    result = await candidates(index, Plan(words=()))
    assert result.documents == [] and result.total == 0


# --- candidates: words ------------------------------------------------------------------


async def test_match_all_requires_every_word(index: SearchIndex) -> None:
    found = await codes(index, Plan(words=("acute", "myocardial")))
    assert sorted(found) == ["I21", "I21.9"]


async def test_match_any_accepts_one_word(index: SearchIndex) -> None:
    result = await candidates(index, Plan(words=("acute", "old"), match_all=False))
    assert sorted(d.code for d in result.documents) == ["I21", "I21.9", "I25.2"]
    assert result.total == 3


async def test_match_any_last_word_is_a_prefix(index: SearchIndex) -> None:
    result = await candidates(index, Plan(words=("old", "hyperglyc"), match_all=False))
    assert sorted(d.code for d in result.documents) == ["E11.65", "I25.2"]
    assert result.total == 2


async def test_last_word_matches_as_prefix(index: SearchIndex) -> None:
    assert sorted(await codes(index, Plan(words=("diab",)))) == ["E11", "E11.65"]
    assert sorted(await codes(index, Plan(words=("type", "diab")))) == ["E11", "E11.65"]
    assert await codes(index, Plan(words=("hyperglyc",))) == ["E11.65"]


async def test_prefix_reaching_past_the_word_stem(index: SearchIndex) -> None:
    # "infarction" stems to "infarct"; a coder typing "infarcti" is still on that word.
    result = await candidates(index, Plan(words=("infarcti",)))
    assert sorted(d.code for d in result.documents) == ["I21", "I21.9", "I21.A1", "I25.2"]
    assert result.total == 4
    assert sorted(await codes(index, Plan(words=("old", "myocardi")))) == ["I25.2"]


async def test_only_the_last_word_is_a_prefix(index: SearchIndex) -> None:
    result = await candidates(index, Plan(words=("diab", "type")))
    assert result.documents == [] and result.total == 0


async def test_a_single_letter_last_word_is_matched_whole(index: SearchIndex) -> None:
    # "type 2 d..." must not drag in every entry with a word beginning with "d".
    await index.write(
        IndexChange(upserts=[icd("Z99.1", "Type d exposure"), icd("Z99.2", "Type 2 dementia")]),
        checkpoint(2),
    )
    assert await codes(index, Plan(words=("type", "d"))) == ["Z99.1"]
    assert Plan(words=("type", "d")).generic().prefix is None
    assert Plan(words=("type", "de")).generic().prefix == "de"
    assert sorted(await codes(index, Plan(words=("type", "de")))) == ["Z99.2"]


async def test_words_are_stemmed(index: SearchIndex) -> None:
    found = await codes(index, Plan(words=("infarctions", "acute")))
    assert sorted(found) == ["I21", "I21.9"]
    # The last word is stemmed too, not only taken as a prefix.
    found = await codes(index, Plan(words=("acute", "infarctions")))
    assert sorted(found) == ["I21", "I21.9"]


async def test_accents_are_folded(index: SearchIndex) -> None:
    assert await codes(index, Plan(words=("sjogren",))) == ["M35.00"]
    assert await codes(index, Plan(words=("sjog",))) == ["M35.00"]


async def test_words_split_at_every_punctuation_mark(index: SearchIndex) -> None:
    # FTS5 reads "40.0-44.9" as 40, 0, 44, 9 and "O157:H7" as o157, h7; a tokenizer that
    # keeps "40.0" whole lets "40" (not a prefix here: it is not the last word) miss it.
    upserts = [
        icd("Z68.41", "Body mass index [BMI] 40.0-44.9, adult", chapter="21"),
        icd("A04.3", "Enterohemorrhagic E. coli infection", chapter="1", terms=("O157:H7",)),
    ]
    await index.write(IndexChange(upserts=upserts), checkpoint(2))
    assert await codes(index, Plan(words=("40", "bmi"))) == ["Z68.41"]
    assert await codes(index, Plan(words=("o157", "h7"))) == ["A04.3"]


async def test_terms_are_searchable(index: SearchIndex) -> None:
    assert await codes(index, Plan(words=("nos",))) == ["I21.9"]
    assert await codes(index, Plan(words=("high", "blood"))) == ["I10"]


async def test_words_may_match_across_title_and_terms(index: SearchIndex) -> None:
    # "essential" is in I10's title, "high" only in its terms.
    assert await codes(index, Plan(words=("essential", "high"))) == ["I10"]


async def test_title_outranks_terms(index: SearchIndex) -> None:
    # "pressure" is in R03.0's title but only in I10's terms.
    assert await codes(index, Plan(words=("pressure",))) == ["R03.0", "I10"]


async def test_more_matched_words_rank_higher_with_match_any(index: SearchIndex) -> None:
    found = await codes(index, Plan(words=("old", "myocardial"), match_all=False))
    assert found[0] == "I25.2"
    assert sorted(found) == ["I21", "I21.9", "I21.A1", "I25.2"]


# --- candidates: code and words together, filters, window -------------------------------


async def test_code_or_words(index: SearchIndex) -> None:
    result = await candidates(index, Plan(words=("diabetes",), code="I21"))
    found = [d.code for d in result.documents]
    assert found[:3] == ["I21", "I21.9", "I21.A1"]
    assert sorted(found[3:]) == ["E11", "E11.65"]
    assert result.total == 5


async def test_doc_matching_code_and_words_is_listed_once(index: SearchIndex) -> None:
    result = await candidates(index, Plan(words=("acute",), code="I21"))
    assert [d.code for d in result.documents] == ["I21", "I21.9", "I21.A1"]
    assert result.total == 3


async def test_window_limits_documents_not_total(index: SearchIndex) -> None:
    result = await candidates(index, Plan(words=("diabetes",), code="I21", window=4))
    assert [d.code for d in result.documents][:3] == ["I21", "I21.9", "I21.A1"]
    assert len(result.documents) == 4
    assert result.total == 5


async def test_window_inside_the_code_matches(index: SearchIndex) -> None:
    result = await candidates(index, Plan(words=("diabetes",), code="I21", window=2))
    assert [d.code for d in result.documents] == ["I21", "I21.9"]
    assert result.total == 5


async def test_ties_at_a_windows_edge_are_the_first_by_doc_id(index: SearchIndex) -> None:
    """Where a window ends inside matches of equal score, those returned are the first by
    doc id, in whatever order they were written: two builds of the same entries answer
    alike, and both backends alike."""
    written = ["Q99.7", "Q99.2", "Q99.9", "Q99.4", "Q99.1", "Q99.8", "Q99.3"]
    tied = [icd(code, "Tiedword chromosome disorder", parent="Q99") for code in written]
    await index.write(IndexChange(upserts=tied), checkpoint(2))
    for window, first in ((3, ["Q99.1", "Q99.2", "Q99.3"]), (1, ["Q99.1"])):
        result = await candidates(index, Plan(words=("tiedword",), window=window))
        assert [d.code for d in result.documents] == first
        assert result.total == len(written)
    # Written apart (in tantivy, a segment of their own), ties still come by doc id.
    later = [icd(code, "Tiedword chromosome disorder", parent="Q99") for code in ("Q99.0", "Q99.5")]
    await index.write(IndexChange(upserts=later), checkpoint(3))
    result = await candidates(index, Plan(words=("tiedword",), window=20))
    assert [d.code for d in result.documents] == sorted([*written, "Q99.0", "Q99.5"])


async def test_zero_window_still_counts(index: SearchIndex) -> None:
    result = await candidates(index, Plan(words=("diabetes",), code="I21", window=0))
    assert result.documents == [] and result.total == 5


async def test_an_uncounted_plan_says_whether_more_match_than_it_returns(
    index: SearchIndex,
) -> None:
    """A search box asks for no count (no totalCount selected): ``total`` is then at
    least what was returned, and more when more match, by key or by word."""
    for plan in (Plan(words=(), code="I21", window=2), Plan(words=("diabetes",), window=1)):
        result = await index.candidates(replace(plan.generic(), count=False))
        assert len(result.documents) == plan.window
        assert result.total > plan.window
    whole = await index.candidates(replace(Plan(words=(), code="I21").generic(), count=False))
    assert [d.code for d in whole.documents] == ["I21", "I21.9", "I21.A1"]
    assert whole.total == 3


async def test_system_filter(index: SearchIndex) -> None:
    assert await codes(index, Plan(words=(), code="E", systems=("HCPCS",))) == ["E0100"]
    icd_only = await codes(index, Plan(words=(), code="E", systems=(ICD,)))
    assert icd_only == ["E11", "E11.65"]
    both = await codes(index, Plan(words=(), code="E", systems=(ICD, "HCPCS")))
    assert sorted(both) == ["E0100", "E11", "E11.65"]


async def test_billable_filter(index: SearchIndex) -> None:
    found = await codes(index, Plan(words=(), code="I21", billable_only=True))
    assert found == ["I21.9", "I21.A1"]


async def test_chapter_filter(index: SearchIndex) -> None:
    assert sorted(await codes(index, Plan(words=("type",), chapter="4"))) == [
        "E11",
        "E11.65",
    ]
    assert await codes(index, Plan(words=("type",), chapter="9")) == ["I21.A1"]


async def test_filters_apply_to_code_and_word_matches(index: SearchIndex) -> None:
    plan = Plan(words=("diabetes",), code="I21", billable_only=True)
    result = await candidates(index, plan)
    assert [d.code for d in result.documents] == ["I21.9", "I21.A1", "E11.65"]
    assert result.total == 3
    result = await candidates(index, replace(plan, billable_only=False, chapter="4"))
    assert sorted(d.code for d in result.documents) == ["E11", "E11.65"]
    assert result.total == 2
    result = await candidates(index, replace(plan, billable_only=False, systems=("HCPCS",)))
    assert result.documents == [] and result.total == 0


async def test_candidates_round_trip_documents(index: SearchIndex) -> None:
    (doc,) = (await candidates(index, Plan(words=(), code="I219"))).documents
    assert doc == DOCS[1]
    assert isinstance(doc.terms, tuple)
    (doc,) = (await candidates(index, Plan(words=("cane",)))).documents
    assert doc == DOCS[-1]
    assert doc.chapter is None and doc.parent is None and doc.terms == ()


# --- facets: every match counted, each group without its own filter ---------------------

# "E" begins E11, E11.65 and E0100 (HCPCS, no chapter); "type" is in E11, E11.65 and
# I21.A1 (chapter 9): four entries, E11 the one not billable.
TYPE_OR_E = Plan(words=("type",), code="E")


async def test_facets_count_every_match_once(index: SearchIndex) -> None:
    facets = await facets_of(index, replace(TYPE_OR_E, window=1))  # the window limits no count
    assert facets == CodeFacets(
        systems={ICD: 3, "HCPCS": 1},
        chapters={(ICD, "4"): 2, (ICD, "9"): 1},
        billable={True: 3, False: 1},
    )
    assert sum(facets.systems.values()) == (await candidates(index, TYPE_OR_E)).total


async def test_each_facet_ignores_its_own_filter_and_keeps_the_others(index: SearchIndex) -> None:
    hcpcs = await facets_of(index, replace(TYPE_OR_E, systems=("HCPCS",)))
    assert hcpcs == CodeFacets(systems={ICD: 3, "HCPCS": 1}, chapters={}, billable={True: 1})
    chapter_4 = await facets_of(index, replace(TYPE_OR_E, chapter="4"))
    assert chapter_4 == CodeFacets(
        systems={ICD: 2}, chapters={(ICD, "4"): 2, (ICD, "9"): 1}, billable={True: 1, False: 1}
    )
    billable = await facets_of(index, replace(TYPE_OR_E, billable_only=True))
    assert billable == CodeFacets(
        systems={ICD: 2, "HCPCS": 1},
        chapters={(ICD, "4"): 1, (ICD, "9"): 1},
        billable={True: 3, False: 1},
    )
    both = await facets_of(index, replace(TYPE_OR_E, systems=(ICD,), billable_only=True))
    assert both == CodeFacets(
        systems={ICD: 2, "HCPCS": 1},
        chapters={(ICD, "4"): 1, (ICD, "9"): 1},
        billable={True: 2, False: 1},
    )


@pytest.mark.parametrize(
    "plan",
    [
        TYPE_OR_E,
        Plan(words=("myocardial",)),
        Plan(words=(), code="I2", billable_only=True),
        Plan(words=("acute", "old"), match_all=False, chapter="9"),
        Plan(words=("diabetes",), code="I21", systems=(ICD,)),
        Plan(words=("blood", "pressure"), systems=("HCPCS",)),
    ],
    ids=lambda plan: f"{plan.words}-{plan.code}",
)
async def test_a_facet_count_is_what_choosing_that_value_finds(
    index: SearchIndex, plan: Plan
) -> None:
    async def total(narrowed: Plan) -> int:
        return (await candidates(index, narrowed)).total

    facets = await facets_of(index, plan)
    assert facets.systems or facets.billable, "a plan meant to match something"
    for system, count in facets.systems.items():
        assert await total(replace(plan, systems=(system,))) == count, system
    assert sum(facets.systems.values()) == await total(replace(plan, systems=()))
    for (system, chapter), count in facets.chapters.items():
        assert await total(replace(plan, systems=(system,), chapter=chapter)) == count
    everything = await total(replace(plan, billable_only=False))
    billable = await total(replace(plan, billable_only=True))
    assert facets.billable.get(True, 0) == billable
    assert facets.billable.get(False, 0) == everything - billable


async def test_facets_of_nothing_are_empty(index: SearchIndex) -> None:
    assert await facets_of(index, Plan(words=())) == CodeFacets()
    assert await facets_of(index, Plan(words=(), code="")) == CodeFacets()
    assert await facets_of(index, Plan(words=(), code="Z99")) == CodeFacets()
    assert await facets_of(index, Plan(words=("zebra",))) == CodeFacets()


# --- documents, get, count --------------------------------------------------------------


async def test_get_count_documents(index: SearchIndex) -> None:
    assert await index.get("ICD10CM:I21.9") == DOCS[1]
    assert await index.get("HCPCS:E0100") == DOCS[-1]
    assert await index.get("ICD10CM:NOPE") is None
    assert await index.count() == len(DOCS)
    assert await index.documents() == sorted(DOCS, key=lambda d: d.doc_id)


async def test_listing_pages_one_system_in_doc_id_order(
    index: SearchIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    # OpenSearch walks its pages with search_after: make them small enough to walk here.
    monkeypatch.setattr("services.shared.search.opensearch.catalog._PAGE", 2)
    mine = sorted((d for d in DOCS if d.system == ICD), key=lambda d: d.doc_id)
    everything, total = await index.listing("system", ICD, 0, 1000)
    assert everything == mine and total == len(mine)
    pages = [await index.listing("system", ICD, offset, 2) for offset in range(0, len(mine), 2)]
    assert [d for page, _ in pages for d in page] == mine
    assert all(count == len(mine) for _, count in pages)
    assert await index.listing("system", ICD, len(mine), 5) == ([], len(mine))
    assert await index.listing("system", "CPT", 0, 5) == ([], 0)


# --- writes and checkpoints -------------------------------------------------------------


async def test_write_stores_checkpoint(catalog: SearchCatalog) -> None:
    index = await catalog.live()
    assert await index.checkpoint("search", "codes") is None
    await index.write(IndexChange(upserts=DOCS[:2]), checkpoint(5))
    assert await index.checkpoint("search", "codes") == checkpoint(5)
    assert await index.checkpoint("search", "other") is None
    assert await index.checkpoint("other", "codes") is None
    await index.write(IndexChange(), checkpoint(6))  # an empty change still advances
    assert await index.checkpoint("search", "codes") == checkpoint(6)
    assert await index.count() == 2


async def test_rewriting_the_same_change_is_idempotent(index: SearchIndex) -> None:
    before = await index.documents()
    await seed(index)
    await seed(index)
    assert await index.documents() == before
    assert await index.count() == len(DOCS)
    assert await codes(index, Plan(words=("sjogren",))) == ["M35.00"]


async def test_upsert_replaces_document(index: SearchIndex) -> None:
    renamed = replace(DOCS[0], title="Acute heart attack", version=2)
    await index.write(IndexChange(upserts=[renamed]), checkpoint(2))
    assert await index.get(renamed.doc_id) == renamed
    assert await codes(index, Plan(words=("heart",))) == ["I21"]
    # The old title no longer matches, whole or as a prefix.
    assert "I21" not in await codes(index, Plan(words=("myocardial",)))
    assert "I21" not in await codes(index, Plan(words=("myocardi",)))
    assert await index.count() == len(DOCS)


async def test_deletions_ignore_missing_documents(index: SearchIndex) -> None:
    change = IndexChange(deletions=["ICD10CM:I21.9", "ICD10CM:NOT-THERE"])
    await index.write(change, checkpoint(2))
    assert await index.get("ICD10CM:I21.9") is None
    assert await index.count() == len(DOCS) - 1
    assert await codes(index, Plan(words=(), code="I21")) == ["I21", "I21.A1"]
    assert await codes(index, Plan(words=("unspec",))) == ["M35.00"]
    assert await index.checkpoint("search", "codes") == checkpoint(2)


async def test_upsert_and_delete_in_one_change(index: SearchIndex) -> None:
    added = icd("I21.4", "Non-ST elevation (NSTEMI) myocardial infarction", parent="I21")
    change = IndexChange(upserts=[added], deletions=["ICD10CM:I21.A1"])
    await index.write(change, checkpoint(2))
    assert await codes(index, Plan(words=(), code="I21")) == ["I21", "I21.4", "I21.9"]
    assert await index.count() == len(DOCS)


# --- versions and the alias -------------------------------------------------------------


async def test_live_creates_first_version_once(
    catalog: SearchCatalog, open_catalog: Opener
) -> None:
    first = await catalog.live()
    assert first.name.endswith("v1")
    assert (await catalog.live()).name == first.name
    assert await first.count() == 0
    # Another process opening the same store finds that version, not a new one.
    assert (await open_catalog(None).live()).name == first.name


async def test_create_version_is_empty_and_not_live(
    catalog: SearchCatalog, index: SearchIndex
) -> None:
    new = await catalog.create_version()
    assert new.name.endswith("v2")
    assert await new.count() == 0
    assert await new.checkpoint("search", "codes") is None
    assert (await catalog.live()).name == index.name
    assert await index.count() == len(DOCS)
    assert await codes(await catalog.live(), Plan(words=(), code="I219")) == ["I21.9"]


async def test_live_after_versions_without_alias(catalog: SearchCatalog) -> None:
    """A version created before any alias existed is not made live by accident."""
    pending = await catalog.create_version()
    live = await catalog.live()
    assert pending.name.endswith("v1")
    assert live.name.endswith("v2")
    await seed(pending)
    assert await live.count() == 0


async def test_promote_swaps_alias_and_drops_older(
    catalog: SearchCatalog, open_catalog: Opener
) -> None:
    old = await catalog.live()
    await seed(old)
    abandoned = await catalog.create_version()  # a rebuild that never finished
    new = await catalog.create_version()
    newer = await catalog.create_version()  # a rebuild still in progress
    assert [v.name[-2:] for v in (old, abandoned, new, newer)] == ["v1", "v2", "v3", "v4"]
    await abandoned.write(IndexChange(upserts=DOCS[:1]), checkpoint(4))
    await new.write(IndexChange(upserts=DOCS[:3]), checkpoint(7))
    other_process = open_catalog(None)
    assert (await other_process.live()).name == old.name

    await catalog.promote(new)

    assert (await catalog.live()).name == new.name
    assert (await other_process.live()).name == new.name  # seen at once elsewhere
    for gone in (old, abandoned):  # older versions are dropped, with their checkpoints
        assert await gone.get(DOCS[0].doc_id) is None
        assert await gone.checkpoint("search", "codes") is None
    assert await new.checkpoint("search", "codes") == checkpoint(7)
    assert await (await catalog.live()).count() == 3
    # The rebuild in progress survives the promote and can still be finished.
    await newer.write(IndexChange(upserts=DOCS), checkpoint(8))
    assert await newer.count() == len(DOCS)
    assert await newer.checkpoint("search", "codes") == checkpoint(8)
    assert (await catalog.create_version()).name.endswith("v5")


async def test_promote_is_idempotent(catalog: SearchCatalog, index: SearchIndex) -> None:
    await catalog.promote(index)
    await catalog.promote(index)
    live = await catalog.live()
    assert live.name == index.name
    assert await live.count() == len(DOCS)
    assert await live.checkpoint("search", "codes") == checkpoint(1)


async def test_promote_rejects_a_version_of_another_alias(
    catalog: SearchCatalog, open_catalog: Opener, index: SearchIndex
) -> None:
    foreign = await open_catalog(fresh_alias()).live()
    with pytest.raises(ValueError, match="not a version"):
        await catalog.promote(foreign)
    assert (await catalog.live()).name == index.name


async def test_compacting_keeps_documents_checkpoints_and_answers(
    catalog: SearchCatalog,
) -> None:
    """A version loaded in several writes (several segments), compacted: the same
    documents, checkpoint and candidates; and written to afterwards as before."""
    live = await catalog.live()
    for n, doc in enumerate(DOCS, start=1):
        await live.write(IndexChange(upserts=[doc]), checkpoint(n))
    plans = [Plan(words=("infarction",)).generic(), Plan(words=(), code="I21").generic(),
             Plan(words=("diabetes", "kidney"), match_all=False).generic()]

    def seen(found: list[Candidates[CodeDocument]]) -> list[tuple[list[str], int]]:
        return [([d.doc_id for d in c.documents], c.total) for c in found]

    before = seen(await live.candidates_each(plans))
    documents = await live.documents()
    await live.compact()
    assert await live.documents() == documents
    assert await live.checkpoint("search", "codes") == checkpoint(len(DOCS))
    assert seen(await live.candidates_each(plans)) == before
    await live.write(IndexChange(deletions=[DOCS[0].doc_id]), checkpoint(len(DOCS) + 1))
    assert await live.count() == len(DOCS) - 1
    assert await live.checkpoint("search", "codes") == checkpoint(len(DOCS) + 1)


async def test_versions_have_separate_checkpoints(catalog: SearchCatalog) -> None:
    live = await catalog.live()
    await live.write(IndexChange(), checkpoint(3))
    new = await catalog.create_version()
    assert await new.checkpoint("search", "codes") is None
    await new.write(IndexChange(), checkpoint(1))
    assert await live.checkpoint("search", "codes") == checkpoint(3)
    assert await new.checkpoint("search", "codes") == checkpoint(1)


async def test_aliases_of_one_store_are_independent(
    catalog: SearchCatalog, open_catalog: Opener, index: SearchIndex
) -> None:
    other = open_catalog(fresh_alias())
    other_live = await other.live()
    assert other_live.name != index.name
    assert await other_live.count() == 0
    await other.promote(await other.create_version())
    assert (await catalog.live()).name == index.name
    assert await index.count() == len(DOCS)


# --- searching while a rebuilt version is promoted --------------------------------------

REBUILD_QUERIES = ["myocardial infarction", "i21", "diab", "E11.65", "sjogren", "pressure"]


async def assert_search_answers(catalog: SearchCatalog) -> None:
    for text in REBUILD_QUERIES:
        results = await search(catalog, text)
        assert results.documents, f"{text!r} found nothing"
        assert results.total >= len(results.documents)


async def rebuild(
    catalog: SearchCatalog, between: Callable[[], Awaitable[None]] | None = None
) -> None:
    """create_version, write in batches, promote; ``between`` runs after every step."""

    async def step() -> None:
        if between is not None:
            await between()

    new = await catalog.create_version()
    await step()
    for start in range(0, len(DOCS), 3):
        await new.write(IndexChange(upserts=DOCS[start : start + 3]), checkpoint(start + 1))
        await step()
    await catalog.promote(new)
    await step()


async def test_searches_between_rebuild_steps(catalog: SearchCatalog, index: SearchIndex) -> None:
    for _ in range(2):
        await rebuild(catalog, between=lambda: assert_search_answers(catalog))
    assert (await catalog.live()).name.endswith("v3")


async def test_searches_concurrent_with_promote(
    request: pytest.FixtureRequest,
    catalog: SearchCatalog,
    open_catalog: Opener,
    index: SearchIndex,
) -> None:
    """Readers, in this process and another, never see an error or an empty answer."""
    # Timing-dependent on OpenSearch (about one run in seven), hence not strict; the
    # next test pins the same failure deterministically.
    readers = [catalog, open_catalog(None)]
    done = asyncio.Event()
    searches = 0

    async def read(reader: SearchCatalog) -> None:
        nonlocal searches
        while not done.is_set():
            await assert_search_answers(reader)
            searches += 1
            await asyncio.sleep(0)

    async def write() -> None:
        try:
            for _ in range(4):
                await rebuild(catalog)
                await asyncio.sleep(0)
        finally:
            done.set()

    async with asyncio.TaskGroup() as group:  # a failure cancels the other tasks
        group.create_task(write())
        for reader in readers * 2:
            group.create_task(read(reader))
    assert searches >= 4
    assert (await catalog.live()).name.endswith("v5")


async def test_search_begun_on_a_version_that_is_then_promoted_away(
    request: pytest.FixtureRequest, catalog: SearchCatalog, index: SearchIndex
) -> None:
    """The worst interleaving: the reader resolved the live version, then lost it."""
    reader = await catalog.live()  # what engine.search does before candidates()
    await rebuild(catalog)
    result = await candidates(reader, Plan(words=("myocardial",), code="I21"))
    assert [d.code for d in result.documents][:3] == ["I21", "I21.9", "I21.A1"]
    assert result.total == 4
    counted = await facets_of(reader, Plan(words=("myocardial",), code="I21"))
    assert counted.systems == {ICD: 4}


# --- relevance parity: the same entries, the same engine, the same answers --------------

# Real ICD-10-CM (April 2026) titles and inclusion terms, checked against the tabular.
CATALOGUE = [
    icd("I10", "Essential (primary) hypertension", parent="I10-I1A", kind="category"),
    icd(
        "I11.0",
        "Hypertensive heart disease with heart failure",
        parent="I11",
        terms=("Hypertensive heart failure",),
    ),
    icd(
        "I11.9",
        "Hypertensive heart disease without heart failure",
        parent="I11",
        terms=("Hypertensive heart disease NOS",),
    ),
    icd(
        "I20.0",
        "Unstable angina",
        parent="I20",
        terms=(
            "Accelerated angina",
            "Crescendo angina",
            "De novo effort angina",
            "Intermediate coronary syndrome",
            "Preinfarction syndrome",
            "Worsening effort angina",
        ),
    ),
    icd("I21", "Acute myocardial infarction", billable=False, parent="I20-I25", kind="category"),
    icd(
        "I21.4",
        "Non-ST elevation (NSTEMI) myocardial infarction",
        parent="I21",
        terms=(
            "Acute subendocardial myocardial infarction",
            "Non-Q wave myocardial infarction NOS",
            "Nontransmural myocardial infarction NOS",
            "Type 1 non-ST elevation myocardial infarction",
        ),
    ),
    icd(
        "I21.9",
        "Acute myocardial infarction, unspecified",
        parent="I21",
        terms=("Myocardial infarction (acute) NOS",),
    ),
    icd(
        "I21.A1",
        "Myocardial infarction type 2",
        parent="I21.A",
        terms=(
            "Myocardial infarction due to demand ischemia",
            "Myocardial infarction secondary to ischemic imbalance",
        ),
    ),
    icd(
        "I25.10",
        "Atherosclerotic heart disease of native coronary artery without angina pectoris",
        parent="I25.1",
        terms=("Atherosclerotic heart disease NOS",),
    ),
    icd(
        "I25.2",
        "Old myocardial infarction",
        parent="I25",
        terms=(
            "Healed myocardial infarction",
            "Past myocardial infarction diagnosed by ECG or other investigation, but "
            "currently presenting no symptoms",
        ),
    ),
    icd("I48.0", "Paroxysmal atrial fibrillation", parent="I48"),
    icd("I48.91", "Unspecified atrial fibrillation", parent="I48.9"),
    icd("I50.22", "Chronic systolic (congestive) heart failure", parent="I50.2"),
    icd(
        "I50.9",
        "Heart failure, unspecified",
        parent="I50",
        terms=(
            "Cardiac, heart or myocardial failure NOS",
            "Congestive heart disease",
            "Congestive heart failure NOS",
        ),
    ),
    icd("I63.9", "Cerebral infarction, unspecified", parent="I63", terms=("Stroke NOS",)),
    icd("E03.9", "Hypothyroidism, unspecified", chapter="4", parent="E03", terms=("Myxedema NOS",)),
    icd("E10.9", "Type 1 diabetes mellitus without complications", chapter="4", parent="E10"),
    icd(
        "E11",
        "Type 2 diabetes mellitus",
        billable=False,
        chapter="4",
        parent="E08-E13",
        kind="category",
    ),
    icd(
        "E11.22",
        "Type 2 diabetes mellitus with diabetic chronic kidney disease",
        chapter="4",
        parent="E11.2",
    ),
    icd(
        "E11.40",
        "Type 2 diabetes mellitus with diabetic neuropathy, unspecified",
        chapter="4",
        parent="E11.4",
    ),
    icd("E11.65", "Type 2 diabetes mellitus with hyperglycemia", chapter="4", parent="E11.6"),
    icd("E11.9", "Type 2 diabetes mellitus without complications", chapter="4", parent="E11"),
    icd("E66.9", "Obesity, unspecified", chapter="4", parent="E66", terms=("Obesity NOS",)),
    icd("E78.5", "Hyperlipidemia, unspecified", chapter="4", parent="E78"),
    icd(
        "J02.9",
        "Acute pharyngitis, unspecified",
        chapter="10",
        parent="J02",
        terms=(
            "Gangrenous pharyngitis (acute)",
            "Infective pharyngitis (acute) NOS",
            "Pharyngitis (acute) NOS",
            "Sore throat (acute) NOS",
            "Suppurative pharyngitis (acute)",
            "Ulcerative pharyngitis (acute)",
        ),
    ),
    icd(
        "J06.9",
        "Acute upper respiratory infection, unspecified",
        chapter="10",
        parent="J06",
        terms=("Upper respiratory disease, acute", "Upper respiratory infection NOS"),
    ),
    icd("J18.1", "Lobar pneumonia, unspecified organism", chapter="10", parent="J18"),
    icd("J18.9", "Pneumonia, unspecified organism", chapter="10", parent="J18"),
    icd(
        "J44.1",
        "Chronic obstructive pulmonary disease with (acute) exacerbation",
        chapter="10",
        parent="J44",
        terms=("Decompensated COPD", "Decompensated COPD with (acute) exacerbation"),
    ),
    icd(
        "J44.9",
        "Chronic obstructive pulmonary disease, unspecified",
        chapter="10",
        parent="J44",
        terms=("Chronic obstructive airway disease NOS", "Chronic obstructive lung disease NOS"),
    ),
    icd(
        "J45.909",
        "Unspecified asthma, uncomplicated",
        chapter="10",
        parent="J45.90",
        terms=("Asthma NOS",),
    ),
    icd(
        "N17.9",
        "Acute kidney failure, unspecified",
        chapter="14",
        parent="N17",
        terms=("Acute kidney injury (nontraumatic)",),
    ),
    icd("N18.30", "Chronic kidney disease, stage 3 unspecified", chapter="14", parent="N18.3"),
    icd("N39.0", "Urinary tract infection, site not specified", chapter="14", parent="N39"),
    icd(
        "S72.001A",
        "Fracture of unspecified part of neck of right femur, initial encounter "
        "for closed fracture",
        chapter="19",
        parent="S72.001",
    ),
    icd(
        "S72.002A",
        "Fracture of unspecified part of neck of left femur, initial encounter for closed fracture",
        chapter="19",
        parent="S72.002",
    ),
    icd(
        "S52.501A",
        "Unspecified fracture of the lower end of right radius, initial "
        "encounter for closed fracture",
        chapter="19",
        parent="S52.501",
    ),
    icd("M17.11", "Unilateral primary osteoarthritis, right knee", chapter="13", parent="M17.1"),
    icd("M17.12", "Unilateral primary osteoarthritis, left knee", chapter="13", parent="M17.1"),
    icd("M35.00", "Sjögren syndrome, unspecified", chapter="13", parent="M35.0"),
    icd(
        "M54.50",
        "Low back pain, unspecified",
        chapter="13",
        parent="M54.5",
        terms=("Loin pain", "Lumbago NOS"),
    ),
    icd(
        "M81.0",
        "Age-related osteoporosis without current pathological fracture",
        chapter="13",
        parent="M81",
        terms=(
            "Involutional osteoporosis without current pathological fracture",
            "Osteoporosis NOS",
            "Postmenopausal osteoporosis without current pathological fracture",
            "Senile osteoporosis without current pathological fracture",
        ),
    ),
    icd(
        "F32.A",
        "Depression, unspecified",
        chapter="5",
        parent="F32",
        terms=("Depression NOS", "Depressive disorder NOS"),
    ),
    icd(
        "F41.1",
        "Generalized anxiety disorder",
        chapter="5",
        parent="F41",
        terms=("Anxiety neurosis", "Anxiety reaction", "Anxiety state", "Overanxious disorder"),
    ),
    icd("G30.9", "Alzheimer's disease, unspecified", chapter="6", parent="G30"),
    icd("H81.09", "Ménière's disease, unspecified ear", chapter="8", parent="H81.0"),
    icd(
        "K21.9",
        "Gastro-esophageal reflux disease without esophagitis",
        chapter="11",
        parent="K21",
        terms=("Esophageal reflux NOS",),
    ),
    icd(
        "K35.80",
        "Unspecified acute appendicitis",
        chapter="11",
        parent="K35.8",
        terms=(
            "Acute appendicitis NOS",
            "Acute appendicitis without (localized) (generalized) peritonitis",
        ),
    ),
    icd("R07.9", "Chest pain, unspecified", chapter="18", parent="R07"),
    icd("R10.9", "Unspecified abdominal pain", chapter="18", parent="R10"),
    icd(
        "R50.9",
        "Fever, unspecified",
        chapter="18",
        parent="R50",
        terms=(
            "Fever NOS",
            "Fever of unknown origin [FUO]",
            "Fever with chills",
            "Fever with rigors",
            "Hyperpyrexia NOS",
            "Persistent fever",
            "Pyrexia NOS",
        ),
    ),
]

def query(text: str, first: str | None = None) -> tuple[str, str | None]:
    """A parity query; ``first``: the code a coder expects on top (None: parity only)."""
    return text, first


PARITY_QUERIES = [
    query("myocardial infarction"),
    query("acute myocardial infarction unspecified", "I21.9"),
    query("infarcti"),
    query("i219", "I21.9"),
    query("I21.9", "I21.9"),
    query("i21 9", "I21.9"),
    query("I21", "I21"),
    query("E11.6", "E11.65"),
    query("e11", "E11"),
    query("I48", "I48.0"),
    query("s72001a", "S72.001A"),
    query("S72.00", "S72.001A"),
    query("type 2 diabetes hyperglyc", "E11.65"),
    query("type 1 diab", "E10.9"),
    query("diabetes"),
    query("heart failure"),
    query("congestive heart failure", "I50.9"),  # the index: "Failure, heart, congestive" I50.9
    query("chronic systolic"),
    query("fractures femur"),
    query("hip fracture"),  # no entry says "hip": any word will do
    query("knee osteoarth"),
    query("copd"),
    query("hypertension", "I10"),  # also finds "hypertensive": the same stem
    query("urinary tract infection", "N39.0"),
    query("pneumonia", "J18.9"),
    query("lobar pneu", "J18.1"),
    query("sjogren", "M35.00"),
    query("meniere", "H81.09"),
    query("alzheimers", "G30.9"),
    query("stroke", "I63.9"),
    query("chronic kidney"),
    query("gastro esophageal reflux", "K21.9"),
    query("unspecified"),
]


def parity_cases() -> list[object]:
    return [pytest.param(text, first, id=text) for text, first in PARITY_QUERIES]


@pytest.fixture
async def both_backends(
    tmp_path: Path, opensearch_url: str
) -> AsyncIterator[dict[str, SearchCatalog]]:
    catalogs: dict[str, SearchCatalog] = {
        "tantivy": TantivyCatalog(tmp_path / "search", CODES),
        "opensearch": OpenSearchCatalog(opensearch_url, CODES, prefix=fresh_alias()),
    }
    try:
        for catalog in catalogs.values():
            live = await catalog.live()
            await live.write(IndexChange(upserts=CATALOGUE), checkpoint(1))
        yield catalogs
    finally:
        for catalog in catalogs.values():
            await catalog.close()


def test_catalogue_is_realistic() -> None:
    assert len(CATALOGUE) >= 40
    assert len({d.doc_id for d in CATALOGUE}) == len(CATALOGUE)
    assert len(PARITY_QUERIES) >= 15


Answer = tuple[list[str], int]  # codes of the page, total


async def answers(catalogs: dict[str, SearchCatalog], text: str, limit: int) -> dict[str, Answer]:
    found: dict[str, Answer] = {}
    for backend, catalog in catalogs.items():
        results = await search(catalog, text, limit=limit)
        found[backend] = ([d.code for d in results.documents], results.total)
    return found


@pytest.mark.parametrize(("text", "first"), parity_cases())
async def test_parity_same_matches(
    both_backends: dict[str, SearchCatalog], text: str, first: str | None
) -> None:
    """Both backends find the same entries for what a coder types (retrieval parity)."""
    found = await answers(both_backends, text, limit=len(CATALOGUE))
    (tantivy_codes, tantivy_total), (os_codes, os_total) = found["tantivy"], found["opensearch"]
    assert tantivy_codes, f"{text!r} found nothing"
    assert (sorted(tantivy_codes), tantivy_total) == (sorted(os_codes), os_total)


@pytest.mark.parametrize(("text", "first"), parity_cases())
async def test_parity_same_top_five(
    both_backends: dict[str, SearchCatalog], text: str, first: str | None
) -> None:
    """The shared engine puts the same five entries first, in the same order."""
    found = await answers(both_backends, text, limit=5)
    assert found["tantivy"] == found["opensearch"]
    if first is not None:
        assert found["tantivy"][0][:1] == [first]


async def test_each_search_and_count_reads_its_texts_afresh(
    both_backends: dict[str, SearchCatalog],
) -> None:
    """Readings are not kept from one search to the next (search_readings): a reading
    kept before is gone once a search or a facet count has started, and the same search
    ranks the same way again."""
    for catalog in both_backends.values():
        for asked in (search, facets):
            earlier = keep(Reading("read by an earlier search"))
            first = await asked(catalog, "myocardial infarction")  # type: ignore[operator]
            assert read("read by an earlier search") is not earlier
            assert await asked(catalog, "myocardial infarction") == first  # type: ignore[operator]


async def test_parity_without_a_count(both_backends: dict[str, SearchCatalog]) -> None:
    """A search box selects no totalCount: the page is the same as with one, on both."""
    for text, _ in PARITY_QUERIES:
        pages = set()
        for catalog in both_backends.values():
            for count in (True, False):
                found = await search(catalog, text, limit=5, count=count)
                pages.add(tuple(d.code for d in found.documents))
        assert len(pages) == 1, text


@pytest.mark.parametrize(("text", "first"), parity_cases())
async def test_parity_same_facets(
    both_backends: dict[str, SearchCatalog], text: str, first: str | None
) -> None:
    """Both backends count the same; the counts add up to the search's total."""
    counted = {backend: await facets(c, text) for backend, c in both_backends.items()}
    assert counted["tantivy"] == counted["opensearch"]
    total = (await search(both_backends["tantivy"], text)).total
    assert sum(counted["tantivy"].systems.values()) == total
    assert sum(counted["tantivy"].billable.values()) == total


async def test_facets_read_the_query_as_search_does(
    both_backends: dict[str, SearchCatalog],
) -> None:
    for catalog in both_backends.values():
        assert await facets(catalog, "diabetis") == await facets(catalog, "diabetes")
        assert (await facets(catalog, "diabetes")).chapters == {(ICD, "4"): 6}
        # No entry says "hip": counted as search relaxes it, over "fracture".
        hip = await facets(catalog, "hip fracture")
        assert hip.chapters == {(ICD, "13"): 1, (ICD, "19"): 3}
        assert await facets(catalog, "  ") == CodeFacets()
        # One billable entry of chapter 14 says both words (N18.30): search adds those
        # missing one (N17.9, "kidney"), and counts them.
        kidney = await facets(catalog, "chronic kidney", chapter="14", billable_only=True)
        assert kidney.chapters == {(ICD, "4"): 1, (ICD, "14"): 2}
        assert kidney.systems == {ICD: 2} and kidney.billable == {True: 2}
        found = await search(catalog, "chronic kidney", chapter="14", billable_only=True)
        assert [d.code for d in found.documents] == ["N18.30", "N17.9"]
        assert found.total == 2
        # A list of codes counts each code's entries, as its search lists them.
        listed = await search(catalog, "N18.30, E11.22")
        assert [d.code for d in listed.documents] == ["N18.30", "E11.22"]
        assert (await facets(catalog, "N18.30, E11.22")).chapters == {
            (ICD, "14"): 1, (ICD, "4"): 1
        }
        assert listed.total == 2


# --- the search cache: answers kept until the index changes ------------------------------


async def test_cached_answers_are_served_until_the_index_changes(
    catalog: SearchCatalog, index: SearchIndex
) -> None:
    cache = SearchCache(entries=16, ttl=600)
    first = await search(catalog, "hypertension", cache=cache)
    assert [d.code for d in first.documents] == ["I10", "R03.0"]
    await index.write(
        IndexChange(upserts=[icd("I15.0", "Renovascular hypertension")]), checkpoint(2)
    )
    # Written behind the cache's back (another process): the kept answer is served.
    kept = await search(catalog, "Hypertension ", cache=cache)
    assert [d.code for d in kept.documents] == ["I10", "R03.0"] and kept.total == 2
    cache.changed()  # what the embedded projection calls after each write
    again = await search(catalog, "hypertension", cache=cache)
    assert "I15.0" in [d.code for d in again.documents]
    assert again.total == 3
    uncached = await search(catalog, "hypertension")
    assert [d.code for d in again.documents] == [d.code for d in uncached.documents]
