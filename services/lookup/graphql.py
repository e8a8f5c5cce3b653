"""The lookup product's part of the public schema; resolvers call the lookup client only."""

from __future__ import annotations

from datetime import date
from functools import partial
from typing import Annotated

import strawberry
from strawberry.types import Info

from services.accounts.client import AccountsClient, AccountsFailure
from services.lookup import values as lookup
from services.lookup import web
from services.lookup.client import LookupClient, LookupFailure
from services.lookup.commands import prepare
from services.lookup.runtime import start
from services.lookup.schema import (
    CodeChangeConnection,
    CodeChangeEdge,
    CodeIndexConnection,
    CodeIndexEdge,
    CodeNotFound,
    CodePage,
    CodePageResult,
    CodeSearchConnection,
    CodeSearchEdge,
    CodeSetChange,
    CodeSetRelease,
    CodeSummary,
    CodeSystem,
    Guideline,
    IndexTerm,
    TextSpan,
    unloaded_notices,
)
from services.shared.graphql import (
    PageInfo,
    UserError,
    context,
    cursor_offset,
    offset_cursor,
    page,
    selects,
)
from services.shared.product import Product

MAX_PAGE = 100
MAX_INDEX_PAGE = 1000  # codeIndex items are light; a sitemap reads thousands at a time
# searchCodes with a date of service: how many more results to ask for than the page
# needs, and how many times, to make up for codes that did not exist on that date.
DATED_EXTRA = 5
DATED_ROUNDS = 3

DateOfService = Annotated[
    date | None,
    strawberry.argument(description="answer as of this day (the day the patient was seen): "
                        "the release in force then decides"),
]


def _lookup(info: Info) -> LookupClient:
    client: LookupClient = context(info).client("lookup")
    return client


@strawberry.type
class ReferenceQuery:
    """The reference texts published with the code sets."""

    @strawberry.field(description="The official coding guidelines of a code set, in order.")
    async def guidelines(self, info: Info, system: CodeSystem) -> list[Guideline]:
        items = await _lookup(info).reference(system.value, "guidelines")
        return [Guideline(id=i["id"], section=i["section"], topic=i["topic"], text=i["text"])
                for i in items]

    @strawberry.field(description="Alphabetic Index entries whose term starts with the text.")
    async def alphabetic_index(
        self, info: Info, system: CodeSystem, starts_with: str, first: int = 50
    ) -> list[IndexTerm]:
        if not 0 < first <= MAX_PAGE:
            raise UserError(f"'first' must be between 1 and {MAX_PAGE}")
        wanted = starts_with.strip().casefold()
        if not wanted:
            raise UserError("'startsWith' needs at least one character")
        items = await _lookup(info).reference(system.value, "index")
        found = [i for i in items if i["term"].casefold().startswith(wanted)]
        return [IndexTerm(term=i["term"], text=i["text"], codes=list(i.get("codes", [])))
                for i in found[:first]]


@strawberry.type
class Query(ReferenceQuery):
    @strawberry.field(description=(
        "Free, unmetered search across every loaded code system. With dateOfService, only "
        "codes that existed on that day, with the titles they had then; totalCount then "
        "counts matches before that filter. Search covers the current releases only: a "
        "code deleted since is not found here, only through codePage with a dateOfService."
    ))
    async def search_codes(
        self,
        info: Info,
        query: str,
        systems: list[CodeSystem] | None = None,
        first: int | None = 10,
        after: str | None = None,
        billable_only: bool = False,
        date_of_service: DateOfService = None,
        chapter: Annotated[str | None, strawberry.argument(
            description="only entries under this chapter (ICD-10-CM) or section (PCS...)"
        )] = None,
        typing: Annotated[bool, strawberry.argument(
            description="the query is still being typed (a search box sends each "
            "keystroke): a last word of two letters that no entry holds with the other "
            "words is read as the start of a word (\"paranoid pe\": personality), not as an "
            "abbreviation (\"bilat pe\", sent whole, is a pulmonary embolism)"
        )] = False,
    ) -> CodeSearchConnection:
        first = 10 if first is None else first
        if not 0 < first <= MAX_PAGE:
            raise UserError(f"'first' must be between 1 and {MAX_PAGE}")
        offset = cursor_offset(after)
        client = _lookup(info)
        wanted = [s.value for s in systems] if systems else None
        count_facets = partial(
            client.search_facets, query, systems=wanted, billable_only=billable_only,
            chapter=chapter, typing=typing,
        )
        if date_of_service is not None:
            dated = await _dated_search(
                client, query, wanted, offset, first, billable_only, chapter, date_of_service,
                typing,
            )
            dated.count_facets = count_facets
            return dated
        found = await client.search_codes(
            query,
            systems=wanted,
            offset=offset,
            limit=first,
            billable_only=billable_only,
            chapter=chapter,
            # Counting every match costs a backend more than finding the best: only
            # for a query that shows totalCount.
            count=selects(info, "totalCount"),
            typing=typing,
            spans=selects(info, "edges", "titleMatches"),
        )
        items, page_info = page(offset, found.items, found.total)
        spans = found.title_matches or [[] for _ in items]
        return CodeSearchConnection(
            edges=[
                CodeSearchEdge(cursor=c, node=CodeSummary.of(i),
                               title_matches=[TextSpan(start=a, end=b) for a, b in matches])
                for (c, i), matches in zip(items, spans, strict=True)
            ],
            page_info=page_info,
            total_count=found.total,
            notices=unloaded_notices(found.unloaded),
            count_facets=count_facets,
        )

    @strawberry.field(description=(
        "A code page; 'code' in any common spelling. With dateOfService, the code as it "
        "stood that day (CodeNotFound if it was not valid then); its history is always whole."
    ))
    async def code_page(
        self, info: Info, system: CodeSystem, code: str, date_of_service: DateOfService = None
    ) -> CodePageResult:
        try:
            detail = await _lookup(info).code_detail(system.value, code, as_of=date_of_service)
        except LookupFailure as failure:
            raise UserError(str(failure)) from None
        if detail is None:
            shown = repr(code.strip()[:20])
            if date_of_service is not None:
                return CodeNotFound(message=f"No {system.value} code {shown} existed on "
                                    f"{date_of_service.isoformat()}.")
            return CodeNotFound(message=f"No {system.value} code {shown} exists.")
        ctx = context(info)
        accounts: AccountsClient | None = ctx.clients.get("accounts")
        if accounts is None:  # no accounts product installed: nothing is metered
            return CodePage.of(detail, locked=False, remaining_views=None)
        # The accounts service decides and records the view (exact under concurrency);
        # a view is spent only on a page that exists, keyed by its canonical code.
        try:
            access = await accounts.open_code_page(ctx.token, detail.system, detail.code)
        except AccountsFailure as failure:
            raise UserError(str(failure)) from None
        return CodePage.of(detail, locked=access.locked, remaining_views=access.remaining,
                           next_step=access.next_step)

    @strawberry.field(description=(
        "What the releases of a code set after 'since' up to and including 'until' changed, "
        "one item per change, in release order. 'until' defaults to the latest release and "
        "'since' to the release before 'until'; see codeSetReleases. The first release "
        "imported is the baseline and lists no changes."
    ))
    async def code_changes(
        self,
        info: Info,
        system: CodeSystem,
        since: str | None = None,
        until: str | None = None,
        first: int | None = 50,
        after: str | None = None,
    ) -> CodeChangeConnection:
        first = 50 if first is None else first
        if not 0 < first <= MAX_PAGE:
            raise UserError(f"'first' must be between 1 and {MAX_PAGE}")
        offset = cursor_offset(after)
        try:
            changes = await _lookup(info).changes(system.value, since, until, offset=offset,
                                                  limit=first)
        except LookupFailure as failure:
            raise UserError(str(failure)) from None
        items, page_info = page(offset, changes.items, changes.total)
        return CodeChangeConnection(
            edges=[CodeChangeEdge(cursor=c, node=CodeSetChange.of(i)) for c, i in items],
            page_info=page_info,
            total_count=changes.total,
        )

    @strawberry.field(description=(
        "Every entry of a code system (chapters, blocks, categories and codes: each has a "
        "code page), in code order; for browsing and sitemaps. Unmetered: titles only."
    ))
    async def code_index(
        self, info: Info, system: CodeSystem, first: int | None = 100, after: str | None = None
    ) -> CodeIndexConnection:
        first = 100 if first is None else first
        if not 0 < first <= MAX_INDEX_PAGE:
            raise UserError(f"'first' must be between 1 and {MAX_INDEX_PAGE}")
        offset = cursor_offset(after)
        listed = await _lookup(info).list_codes(system.value, offset, first)
        items, page_info = page(offset, listed.items, listed.total)
        return CodeIndexConnection(
            edges=[CodeIndexEdge(cursor=c, node=CodeSummary.of(i)) for c, i in items],
            page_info=page_info,
            total_count=listed.total,
        )

    @strawberry.field(description="The releases of a code set imported, oldest first.")
    async def code_set_releases(self, info: Info, system: CodeSystem) -> list[CodeSetRelease]:
        return [CodeSetRelease.of(r) for r in await _lookup(info).releases(system.value)]


async def _dated_search(
    client: LookupClient,
    query: str,
    systems: list[str] | None,
    offset: int,
    first: int,
    billable_only: bool,
    chapter: str | None,
    day: date,
    typing: bool,
) -> CodeSearchConnection:
    """A search page of codes that existed on ``day``, as they stood then.

    Cursors stay positions in the undated results, so pages continue where the last
    one stopped; a few extra results are asked for to fill the page.
    """
    kept: list[tuple[int, lookup.CodeSummary]] = []
    position = offset  # the next undated result to look at
    total = 0
    for _ in range(DATED_ROUNDS):
        wanted = first - len(kept)
        found = await client.search_codes(
            query, systems=systems, offset=position,
            limit=min(wanted + max(DATED_EXTRA, wanted // 2), MAX_PAGE),
            billable_only=billable_only, chapter=chapter, typing=typing,
        )
        total = found.total
        if not found.items:
            break
        try:
            then = await client.codes_as_of([(i.system, i.code) for i in found.items], day)
        except LookupFailure as failure:
            raise UserError(str(failure)) from None
        for summary in then:
            if len(kept) == first:
                break
            if summary is not None:
                kept.append((position, summary))
            position += 1
        if len(kept) == first or position >= total:
            break
    edges = [CodeSearchEdge(cursor=offset_cursor(at), node=CodeSummary.of(item))
             for at, item in kept]
    return CodeSearchConnection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=position < total,
            end_cursor=offset_cursor(position - 1) if position > offset else None,
        ),
        total_count=total,
    )


product = Product(name="lookup", query=Query, mutation=None, start=start, prepare=prepare,
                  web=web.part)
