"""GraphQL pieces every product shares: the request context and Relay pagination."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import strawberry
from strawberry.types import Info
from strawberry.types.nodes import SelectedField

T = TypeVar("T")


@dataclass(frozen=True)
class Cookie:
    """A cookie a resolver asks the response to set, and how long the browser keeps it
    (the product that issues it knows: a session cookie lives as long as its session)."""

    value: str
    max_age: int  # seconds


@dataclass
class RequestContext:
    """Built per request by the gateway: the clients, and who is asking."""

    clients: dict[str, Any]
    token: str | None = None
    client_address: str | None = None
    development: bool = False
    response_cookies: dict[str, Cookie | None] = field(default_factory=dict)  # None: delete
    # A subscription's connection_init payload (graphql-transport-ws), set by strawberry.
    connection_params: dict[str, Any] | None = None

    @property
    def bearer(self) -> str | None:
        """The session token: the request's, or (websockets, where browsers set no
        header) an "Authorization: Bearer ..." or "token" in the connection payload."""
        if self.token:
            return self.token
        params = self.connection_params if isinstance(self.connection_params, dict) else {}
        value = params.get("Authorization") or params.get("authorization") or ""
        if isinstance(value, str) and value.lower().startswith("bearer "):
            return value[7:].strip() or None
        token = params.get("token")
        return token if isinstance(token, str) and token else None

    def client(self, product: str) -> Any:
        return self.clients[product]


def context(info: Info) -> RequestContext:
    ctx = info.context
    assert isinstance(ctx, RequestContext)
    return ctx


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


def selects(info: Info, *path: str) -> bool:
    """Whether the query selects the field at ``path`` under the field being resolved
    ("totalCount"; "edges", "titleMatches" one level further down), as written or through
    fragments: for work only some clients want, such as counting every match.

    A loop, not a nested function calling itself: such a function refers to itself
    through its closure, a cycle that only the garbage collector frees, and with it what
    it held, on every request that asks (searchCodes always does)."""
    level: list[Any] = [s for field in info.selected_fields for s in field.selections]
    for depth, name in enumerate(path):
        below: list[Any] = []
        while level:
            selection = level.pop()
            if not isinstance(selection, SelectedField):  # a fragment, spread or inline
                level.extend(selection.selections)
            elif selection.name == name:
                if depth == len(path) - 1:
                    return True
                below.extend(selection.selections)
        level = below
    return False


def page(offset: int, items: Sequence[T], total: int) -> tuple[list[tuple[str, T]], PageInfo]:
    """Each item with its cursor, and the page info, for an offset-paged connection."""
    with_cursors = [(offset_cursor(offset + i), item) for i, item in enumerate(items)]
    return with_cursors, PageInfo(
        has_next_page=offset + len(items) < total,
        end_cursor=with_cursors[-1][0] if with_cursors else None,
    )


def offset_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


@strawberry.type(description="The outcome of a command that returns nothing else; every "
                              "product's mutations share it.")
class ActionResult:
    ok: bool
    code: str | None = strawberry.field(
        description='machine-readable on failure, e.g. "TOKEN_EXPIRED", "TOKEN_USED"')
    message: str

    @classmethod
    def done(cls, message: str) -> ActionResult:
        return cls(ok=True, code=None, message=message)

    @classmethod
    def failed(cls, code: str, message: str) -> ActionResult:
        return cls(ok=False, code=code, message=message)


class UserError(ValueError):
    """A caller mistake whose message is safe to show, even in production."""


class BadCursor(UserError):
    pass


def cursor_offset(cursor: str | None) -> int:
    """The offset after ``cursor``; raises BadCursor for a cursor we did not issue."""
    if cursor is None:
        return 0
    try:
        kind, _, value = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        offset = int(value)
    except (ValueError, UnicodeDecodeError):
        raise BadCursor("'after' is not a cursor this API returned") from None
    if kind != "o" or offset < 0:
        raise BadCursor("'after' is not a cursor this API returned")
    return offset + 1
