"""The lookup product's part of the public schema; resolvers call the lookup client only."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from services.accounts.client import AccountsClient, AccountsFailure
from services.lookup.client import LookupClient
from services.lookup.runtime import start
from services.lookup.schema import (
    CodeNotFound,
    CodePage,
    CodePageResult,
    CodeSearchConnection,
    CodeSearchEdge,
    CodeSummary,
    CodeSystem,
)
from services.shared.graphql import (
    PageInfo,
    UserError,
    context,
    cursor_offset,
    offset_cursor,
)
from services.shared.product import Product

MAX_PAGE = 100


def _lookup(info: Info) -> LookupClient:
    client: LookupClient = context(info).client("lookup")
    return client


@strawberry.type
class Query:
    @strawberry.field(description="Free, unmetered search across every loaded code system.")
    async def search_codes(
        self,
        info: Info,
        query: str,
        systems: list[CodeSystem] | None = None,
        first: int | None = 10,
        after: str | None = None,
        billable_only: bool = False,
    ) -> CodeSearchConnection:
        first = 10 if first is None else first
        if not 0 < first <= MAX_PAGE:
            raise UserError(f"'first' must be between 1 and {MAX_PAGE}")
        offset = cursor_offset(after)
        page = await _lookup(info).search_codes(
            query,
            systems=[s.value for s in systems] if systems else None,
            offset=offset,
            limit=first,
            billable_only=billable_only,
        )
        edges = [
            CodeSearchEdge(cursor=offset_cursor(offset + i), node=CodeSummary.of(item))
            for i, item in enumerate(page.items)
        ]
        return CodeSearchConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=offset + len(edges) < page.total,
                end_cursor=edges[-1].cursor if edges else None,
            ),
            total_count=page.total,
        )

    @strawberry.field(description="A code page; 'code' in any common spelling.")
    async def code_page(self, info: Info, system: CodeSystem, code: str) -> CodePageResult:
        detail = await _lookup(info).code_detail(system.value, code)
        if detail is None:
            return CodeNotFound(message=f"No {system.value} code {code.strip()[:20]!r} exists.")
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


product = Product(name="lookup", query=Query, mutation=None, start=start)
