"""The embedded mode end to end: real ICD-10-CM entries through the store, the bus, the
FTS5 projection and the GraphQL gateway, in one process."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway import cli
from gateway.bootstrap import Platform
from services.lookup import commands as lookup_commands
from services.lookup.api import create_app as lookup_api
from services.lookup.client import HttpLookup, LocalLookup
from services.lookup.domain import CodeEntry
from services.lookup.icd10cm import default_tabular_path
from services.lookup.search.documents import CodeDocument
from services.lookup.search.spelling import Vocabulary
from services.lookup.values import SearchPage
from services.shared.commands import CommandError
from services.shared.export import Selection
from services.shared.settings import Settings
from tests.conftest import chapters, gateway, production
from tests.e2e.helpers import PAGE, SEARCH, graphql, import_entries, lookup, paid_viewer

pytestmark = pytest.mark.e2e


@pytest.fixture
async def served(
    embedded_settings: Settings, icd10cm_release: tuple[str, list[CodeEntry]]
) -> AsyncIterator[tuple[httpx.AsyncClient, Platform]]:
    release, entries = icd10cm_release
    async for client, platform in gateway(embedded_settings):
        await import_entries(platform, release, chapters(entries, "4", "9", "10"))
        yield client, platform


async def test_code_search_puts_the_typed_code_first(served: tuple) -> None:
    client, _ = served
    for typed in ("I21.9", "i219", " I21.9 ", "I21-9"):
        body = await graphql(client, SEARCH, q=typed)
        first = body["data"]["searchCodes"]["edges"][0]["node"]
        assert first == {"system": "ICD10CM", "code": "I21.9",
                         "title": "Acute myocardial infarction, unspecified", "billable": True}


async def test_words_find_codes_and_pages_continue(served: tuple) -> None:
    client, _ = served
    body = await graphql(client, SEARCH, q="type 2 diabetes hyperglycemia", first=3)
    assert body["data"]["searchCodes"]["edges"][0]["node"]["code"] == "E11.65"
    body = await graphql(client, SEARCH, q="type 2 diabetes", first=3)
    result = body["data"]["searchCodes"]
    assert result["totalCount"] >= 3 and result["pageInfo"]["hasNextPage"]
    after = result["pageInfo"]["endCursor"]
    more = (await graphql(client, SEARCH, q="type 2 diabetes", first=3,
                          after=after))["data"]["searchCodes"]
    first_page = {e["node"]["code"] for e in result["edges"]}
    assert first_page.isdisjoint(e["node"]["code"] for e in more["edges"])


async def test_code_page_in_any_spelling(served: tuple) -> None:
    client, platform = served
    anonymous = (await graphql(client, PAGE, system="ICD10CM", code="e1165"))["data"]["codePage"]
    assert anonymous["locked"] is True and anonymous["hierarchy"] is None
    assert anonymous["title"] == "Type 2 diabetes mellitus with hyperglycemia"

    paid = await paid_viewer(platform)
    body = await graphql(client, PAGE, paid, system="ICD10CM", code="e1165")
    page = body["data"]["codePage"]
    assert page["__typename"] == "CodePage" and page["locked"] is False
    assert page["code"] == "E11.65"
    assert page["title"] == "Type 2 diabetes mellitus with hyperglycemia"
    assert [h["code"] for h in page["hierarchy"]] == ["4", "E08-E13", "E11", "E11.6"]
    assert page["history"] == [{"release": "2026-04-01", "change": "added"}]
    i21 = (await graphql(client, PAGE, paid, system="ICD10CM", code="I21"))["data"]["codePage"]
    assert i21["billable"] is False
    assert any(n["kind"] == "use_additional_code" for n in i21["notes"])


async def test_code_page_shows_inherited_notes_links_and_family(served: tuple) -> None:
    client, platform = served
    paid = await paid_viewer(platform)
    query = """query { codePage(system: ICD10CM, code: "I21.9") { ... on CodePage {
        children { code } siblings { code }
        notes { kind source inherited notes links { code title } } } } }"""
    page = (await graphql(client, query, paid))["data"]["codePage"]
    assert page["children"] == []
    assert {"I21.4", "I21.A"} <= {s["code"] for s in page["siblings"]}
    by_source = {(n["source"], n["kind"]) for n in page["notes"]}
    # Written on the category I21 and on the block I20-I25: shown here, marked as such.
    assert ("I21", "use_additional_code") in by_source
    assert any(src == "I20-I25" for src, _ in by_source)
    inherited = [n for n in page["notes"] if n["source"] != "I21.9"]
    assert inherited and all(n["inherited"] for n in inherited)
    links = {link["code"] for n in page["notes"] for link in n["links"]}
    assert "I22" in links  # "subsequent type 1 STEMI or NSTEMI (I22.-)"


@pytest.mark.parametrize("code", ["Q99.99", "E11.659", "not a code", "", "Ω" * 50])
async def test_unknown_codes_are_code_not_found(served: tuple, code: str) -> None:
    client, _ = served
    page = (await graphql(client, PAGE, system="ICD10CM", code=code))["data"]["codePage"]
    assert page["__typename"] == "CodeNotFound"
    assert page["message"]


async def test_hostile_requests_get_errors_not_500s(served: tuple) -> None:
    client, _ = served
    deep = "{ searchCodes(query: \"x\") { edges { node { code } } } }"
    nested = "query { " + "a: searchCodes(query: \"x\") { totalCount } " * 200 + "}"
    for body in (
        {"query": "{ searchCodes(query: "},  # syntax error
        {"query": "{ nothingHere }"},  # validation error
        {"query": nested},  # hundreds of aliases
        {"query": deep.replace("code", "code " + "x { " * 30 + "}" * 30)},
        {"query": "{ searchCodes(query: \"x\", first: -1) { totalCount } }"},
        {"query": "{ searchCodes(query: \"x\", after: \"bogus\") { totalCount } }"},
    ):
        for _ in range(2):  # the second time from the parse and validation caches
            response = await client.post("/graphql", json=body)
            assert response.status_code in (200, 400), response.text
            assert response.json()["errors"]
    huge = {"query": SEARCH, "variables": {"q": "x" * 200_000}}
    response = await client.post("/graphql", json=huge)
    assert response.status_code == 413 and response.json()["errors"]
    response = await client.post("/graphql", content=b"{not json", headers={
        "content-type": "application/json"})
    assert response.status_code == 400


async def test_long_and_odd_queries_answer(served: tuple) -> None:
    client, _ = served
    for text in ("x" * 10_000, "   ", "💔 attack", "ｉ２１．９", "\u0000", "\"*:-()"):
        body = await graphql(client, SEARCH, q=text)
        assert "errors" not in body, body


async def test_health_and_readiness(served: tuple) -> None:
    client, _ = served
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).status_code == 200


async def test_production_hides_introspection_and_masks_errors(
    embedded_settings: Settings,
) -> None:
    async for client, _ in gateway(production(embedded_settings)):
        body = (await client.post("/graphql", json={"query": "{ __schema { types { name } } }"})
                ).json()
        assert body["errors"] and not body.get("data")
        assert (await client.get("/graphql", headers={"accept": "text/html"})).status_code != 200
        user = await graphql(client, SEARCH, q="x", first=1000)
        assert "between 1 and" in user["errors"][0]["message"]


async def test_events_export_in_log_order(served: tuple, embedded_settings: Settings) -> None:
    out = io.StringIO()
    count = await cli.export_events(embedded_settings, Selection(service="lookup"), out=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert count == len(lines) > 3000
    positions = [e["position"] for e in lines]
    assert positions == sorted(positions)
    assert {e["type"] for e in lines} == {"CodeSetCreated", "CodeAdded", "ReleaseImported"}
    only = io.StringIO()
    assert await cli.export_events(
        embedded_settings, Selection(type="ReleaseImported", limit=5), out=only) == 1


async def test_parquet_export_holds_the_json_lines_rows_for_duckdb(
    served: tuple, embedded_settings: Settings, tmp_path: Path
) -> None:
    import duckdb

    for selection in (Selection(), Selection(service="lookup", type="CodeAdded", limit=700),
                      Selection(type="ReleaseImported")):
        jsonl, parquet = tmp_path / "events.jsonl", tmp_path / "events.parquet"
        rows = await cli.export_events(embedded_settings, selection, "jsonl", jsonl)
        assert await cli.export_events(embedded_settings, selection, "parquet", parquet) == rows
        lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
        db = duckdb.connect()
        read = db.execute(
            "SELECT id, type, source, position, aggregate_version, occurred_at,"
            " payload::JSON->>'code' FROM read_parquet(?) ORDER BY source, position",
            [str(parquet)]).fetchall()
        assert len(read) == len(lines) == rows > 0
        assert [r[0] for r in read] == [e["id"] for e in lines]
        assert [r[3] for r in read] == [e["position"] for e in lines]
        assert {r[1] for r in read} == {e["type"] for e in lines}
        assert [r[6] for r in read] == [e["payload"].get("code") for e in lines]
        assert read[0][5].isoformat() == lines[0]["occurred_at"]
    with pytest.raises(cli.CommandError, match="--output"):
        await cli.export_events(embedded_settings, Selection(), "parquet")


async def test_readiness_and_metrics_name_every_series(served: tuple) -> None:
    client, _ = served
    await graphql(client, "query Find($q: String!) { searchCodes(query: $q) { totalCount } }",
                  q="asthma")
    ready = (await client.get("/readyz")).json()
    assert ready["status"] == "ready"
    consumer = next(w for w in ready["workers"] if w["name"] == "search:lookup")
    assert consumer["state"] == "running" and consumer["consecutive_failures"] == 0
    assert consumer["lag"] == 0
    text = (await client.get("/metrics")).text
    assert 'medcode_graphql_request_seconds_count{operation="Find",type="query"}' in text
    assert "medcode_search_seconds_count" in text
    assert 'medcode_consumer_lag{consumer="search:lookup"} 0.0' in text
    for series in ("medcode_metering_outcomes_total", "medcode_consumer_failures_total",
                   "medcode_relay_lag", "medcode_outbox_depth",
                   "medcode_consumer_dead_letters_total"):
        assert f"# TYPE {series.removesuffix('_total')}" in text


async def test_rebuild_swaps_the_index_while_searches_go_on(
    served: tuple, embedded_settings: Settings
) -> None:
    client, platform = served
    before = await (await lookup(platform).catalog.live()).count()
    answered: list[int] = []
    done = asyncio.Event()

    async def keep_searching() -> None:
        while not done.is_set():
            body = await graphql(client, SEARCH, q="I21.9")
            answered.append(len(body["data"]["searchCodes"]["edges"]))
            await asyncio.sleep(0.01)

    searcher = asyncio.create_task(keep_searching())
    message = await lookup_commands.rebuild_search(cli.context(embedded_settings))
    done.set()
    await searcher
    live = await lookup(platform).catalog.live()
    assert live.name.endswith("_v2") and live.name in message
    assert await live.count() == before
    assert answered and all(n > 0 for n in answered)
    # The running consumer follows the swap and keeps indexing into the new version.
    await import_entries(platform, "2026-10-01", [])


def test_broken_file_names_the_place_and_records_nothing(
    tmp_path: Path, embedded_settings: Settings
) -> None:
    source = default_tabular_path().read_bytes()
    truncated = tmp_path / "icd10cm-tabular-April-1-2026.xml"
    truncated.write_bytes(source[: len(source) // 2])
    with pytest.raises(CommandError) as failure:
        asyncio.run(lookup_commands.import_release(cli.context(embedded_settings), "icd10cm",
                                                   truncated))
    assert truncated.name in str(failure.value) and "line" in str(failure.value)
    out = io.StringIO()
    assert asyncio.run(cli.export_events(embedded_settings, Selection(), out=out)) == 0


async def test_a_system_with_no_data_answers_empty_and_says_so(served: tuple) -> None:
    client, _ = served
    query = """query($q: String!) { searchCodes(query: $q, systems: [CPT, ICD10CM]) {
        totalCount notices edges { node { system code } } } }"""
    body = await graphql(client, query, q="99213")
    assert "errors" not in body
    result = body["data"]["searchCodes"]
    assert all(e["node"]["system"] == "ICD10CM" for e in result["edges"])
    assert len(result["notices"]) == 1 and "CPT" in result["notices"][0]
    only_icd = await graphql(client, SEARCH, q="diabetes")
    assert "errors" not in only_icd


async def test_chapter_filter_keeps_to_the_chapter(served: tuple) -> None:
    client, _ = served
    query = """query($q: String!, $chapter: String) { searchCodes(query: $q, chapter: $chapter,
        first: 50) { totalCount edges { node { code } } } }"""
    everywhere = (await graphql(client, query, q="chronic"))["data"]["searchCodes"]
    respiratory = (await graphql(client, query, q="chronic", chapter="10"))["data"]["searchCodes"]
    assert {e["node"]["code"][0] for e in everywhere["edges"]} > {"J"}
    assert respiratory["edges"] and respiratory["totalCount"] < everywhere["totalCount"]
    assert all(e["node"]["code"][0] == "J" for e in respiratory["edges"])


async def test_guidelines_and_alphabetic_index(served: tuple) -> None:
    client, platform = served
    app = lookup(platform).app
    app.publish_reference("ICD10PCS", "guidelines", "2025", [
        {"id": "B3.1a", "section": "Root Operation", "topic": "General Guidelines",
         "text": "Apply the full definition of the root operation."}])
    app.publish_reference("ICD10PCS", "index", "2025", [
        {"term": "Appendectomy", "text": "see Resection, Appendix 0DTJ", "codes": ["0DTJ"]},
        {"term": "Arthroscopy", "text": "see Inspection", "codes": []}])
    query = """{ guidelines(system: ICD10PCS) { id topic text }
                 alphabeticIndex(system: ICD10PCS, startsWith: "append") { term codes } }"""
    body = (await graphql(client, query))["data"]
    assert body["guidelines"][0]["id"] == "B3.1a"
    assert body["alphabeticIndex"] == [{"term": "Appendectomy", "codes": ["0DTJ"]}]
    none = (await graphql(client, "{ guidelines(system: CPT) { id } }"))["data"]
    assert none["guidelines"] == []


async def test_search_shows_where_the_words_matched(served: tuple) -> None:
    client, _ = served
    query = """query($q: String!) { searchCodes(query: $q, first: 1) {
        edges { node { code title } titleMatches { start end } } } }"""
    edge = (await graphql(client, query, q="diabetis hyperglyc"))["data"]["searchCodes"]
    first = edge["edges"][0]
    title = first["node"]["title"]
    marked = [title[s["start"]:s["end"]] for s in first["titleMatches"]]
    # The misspelt word is matched as corrected; the last word as a prefix.
    assert "diabetes" in marked and "hyperglycemia" in marked, (title, marked)


def recorded(
    monkeypatch: pytest.MonkeyPatch, local: LocalLookup, method: str
) -> list[tuple[str, Any]]:
    """Each query the lookup client's ``method`` is called with, and what it answered:
    the client itself still answers."""
    calls: list[tuple[str, Any]] = []
    answer = getattr(local, method)

    async def recording(query: str, **options: Any) -> Any:
        calls.append((query, found := await answer(query, **options)))
        return found

    monkeypatch.setattr(local, method, recording)
    return calls


async def test_where_the_words_matched_is_found_only_when_asked_for(
    served: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, platform = served
    local = lookup(platform)
    calls = recorded(monkeypatch, local, "search_codes")
    marked = """query($q: String!) { searchCodes(query: $q) {
        edges { ... on CodeSearchEdge { titleMatches { start } } } } }"""
    for query in (SEARCH, marked):
        assert "errors" not in await graphql(client, query, q="diabetis")
    pages: list[SearchPage] = [page for _, page in calls]
    assert [len(page.title_matches) for page in pages] == [0, 10]
    remote = over_http(local)
    try:
        assert (await remote.search_codes("diabetis", spans=False)).title_matches == []
        assert (await remote.search_codes("diabetis")).title_matches == pages[1].title_matches
    finally:
        await remote.close()


async def test_a_repeated_search_sees_a_newer_release_at_once(
    served: tuple, icd10cm_release: tuple[str, list[CodeEntry]]
) -> None:
    """Answers are cached, and the embedded projection forgets them when it writes."""
    client, platform = served
    release, entries = icd10cm_release

    async def a00_codes() -> list[str]:
        body = await graphql(client, SEARCH, q="a009")
        assert "errors" not in body
        return [e["node"]["code"] for e in body["data"]["searchCodes"]["edges"]]

    assert "A00.9" not in await a00_codes()
    assert "A00.9" not in await a00_codes()  # now answered from the cache
    later = chapters(entries, "1", "4", "9", "10")  # a "newer release" adding chapter 1
    await import_entries(platform, f"{release}-later", later)
    assert (await a00_codes())[0] == "A00.9"


FACETS = """query($q: String!, $chapter: String, $billableOnly: Boolean = false) {
  searchCodes(query: $q, chapter: $chapter, billableOnly: $billableOnly) {
    totalCount
    facets { systems { system count } chapters { system chapter title count }
             billable { billable count } }
  }
}"""


async def test_search_counts_matches_by_system_chapter_and_billable(served: tuple) -> None:
    client, _ = served
    everywhere = (await graphql(client, FACETS, q="chronic"))["data"]["searchCodes"]
    total, counted = everywhere["totalCount"], everywhere["facets"]
    assert counted["systems"] == [{"system": "ICD10CM", "count": total}]
    assert sum(c["count"] for c in counted["billable"]) == total
    chapters = {c["chapter"]: c for c in counted["chapters"]}
    assert set(chapters) == {"4", "9", "10"}  # the chapters imported
    assert sum(c["count"] for c in chapters.values()) == total
    assert "respiratory" in chapters["10"]["title"].lower()
    counts = [c["count"] for c in counted["chapters"]]
    assert counts == sorted(counts, reverse=True)

    # Choosing a chapter finds what its count said; the chapter list stays whole.
    chosen = (await graphql(client, FACETS, q="chronic", chapter="10"))["data"]["searchCodes"]
    assert chosen["totalCount"] == chapters["10"]["count"] < total
    assert chosen["facets"]["chapters"] == counted["chapters"]
    assert chosen["facets"]["systems"] == [{"system": "ICD10CM", "count": chosen["totalCount"]}]
    billable = (await graphql(client, FACETS, q="chronic", billableOnly=True))["data"]
    assert billable["searchCodes"]["facets"]["billable"] == counted["billable"]
    assert {"billable": True, "count": billable["searchCodes"]["totalCount"]} in counted["billable"]


async def test_facets_are_counted_only_when_asked_for(
    served: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, platform = served
    local = lookup(platform)
    calls = recorded(monkeypatch, local, "search_facets")
    assert "errors" not in await graphql(client, SEARCH, q="diabetis")
    assert calls == []
    found = (await graphql(client, FACETS, q="diabetis"))["data"]["searchCodes"]
    assert [query for query, _ in calls] == ["diabetis"]
    # The misspelt word is read as the search reads it: the same entries are counted.
    assert found["totalCount"] > 0
    assert sum(c["count"] for c in found["facets"]["systems"]) == found["totalCount"]
    empty = (await graphql(client, FACETS, q="  "))["data"]["searchCodes"]
    assert empty["totalCount"] == 0
    assert empty["facets"] == {"systems": [], "chapters": [], "billable": []}


def over_http(local: LocalLookup) -> HttpLookup:
    """A client of the lookup service's own API, as the gateway reaches it when
    distributed: through the ASGI app, no socket."""
    remote = HttpLookup("http://lookup")
    remote._rpc._http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=lookup_api(local)), base_url="http://lookup")
    return remote


async def test_the_http_client_passes_on_a_query_still_being_typed(served: tuple) -> None:
    """``typing`` reaches the lookup service through its own API, as the gateway sends it
    when distributed: "diabetes pe" is on its way to "peripheral" while typed, and is the
    abbreviation sent whole."""
    _, platform = served
    local = lookup(platform)
    remote = over_http(local)
    try:
        answered = {}
        for typing in (True, False):
            near = await local.search_codes("diabetes pe", typing=typing)
            far = await remote.search_codes("diabetes pe", typing=typing)
            assert [i.code for i in far.items] == [i.code for i in near.items]
            answered[typing] = [i.code for i in far.items]
        assert answered[True] != answered[False]
    finally:
        await remote.close()


async def test_the_http_client_counts_the_same_facets(served: tuple) -> None:
    """Through the lookup service's own API, as the gateway reaches it when distributed."""
    _, platform = served
    local = lookup(platform)
    remote = over_http(local)
    try:
        filters: list[dict[str, Any]] = [
            {}, {"chapter": "9"}, {"systems": ["ICD10CM"], "billable_only": True}
        ]
        for chosen in filters:
            found = await remote.search_facets("heart", **chosen)
            assert found == await local.search_facets("heart", **chosen)
            assert found.chapters
    finally:
        await remote.close()


async def test_serving_reads_the_spelling_vocabulary_before_the_first_search(
    served: tuple, embedded_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[int] = []
    original = Vocabulary.of

    def counted(documents: Iterable[CodeDocument]) -> Vocabulary:
        read = list(documents)  # a stream, from the embedded index
        built.append(len(read))
        return original(read)

    monkeypatch.setattr(Vocabulary, "of", staticmethod(counted))
    platform = Platform(embedded_settings)  # a second process's view of the same data
    await platform.start()
    try:
        warm: list[int] = []  # vocabularies built when the warm-ups had all ended
        platform.warm(lambda: warm.append(len(built)))
        async with asyncio.timeout(60):
            while not warm:
                await asyncio.sleep(0.05)
        assert warm == [1] and not platform._warming
        assert built[0] > 1000
        found = await lookup(platform).search_codes("diabetis")  # corrected, not rebuilt
        assert found.items[0].code.startswith("E1")
        assert len(built) == 1
    finally:
        await platform.stop()
