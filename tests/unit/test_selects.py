"""``selects``: whether a query selects a field directly under the one being resolved, or
at a path below it, as written or through fragments; asked on every search, so it must
leave nothing behind for the garbage collector."""

from __future__ import annotations

import gc

import pytest
import strawberry
from strawberry.types import Info

from services.shared.graphql import selects

SEEN: list[bool] = []
GARBAGE: list[int] = []


@strawberry.type
class Inner:
    total: int = 1


@strawberry.type
class Page:
    total: int = 1
    note: str = ""
    inner: Inner = strawberry.field(default_factory=Inner)


@strawberry.type
class Query:
    @strawberry.field
    def page(self, info: Info) -> Page:
        SEEN.append(selects(info, "total"))
        return Page()

    @strawberry.field
    def deep(self, info: Info) -> Page:
        SEEN.append(selects(info, "inner", "total"))
        return Page()

    @strawberry.field
    def collected(self, info: Info) -> Page:
        """What the collector finds after ``selects`` ran ten times."""
        enabled = gc.isenabled()
        gc.disable()
        try:
            gc.collect()
            for _ in range(10):
                selects(info, "total")
                selects(info, "inner", "total")
            GARBAGE.append(gc.collect())
        finally:
            if enabled:
                gc.enable()
        return Page()


SCHEMA = strawberry.Schema(Query)


def seen(query: str) -> list[bool]:
    """What ``selects`` answered while the query ran (which must run without errors)."""
    SEEN.clear()
    result = SCHEMA.execute_sync(query)
    assert result.errors is None
    return SEEN


@pytest.mark.parametrize(("query", "expected"), [
    ("{ page { total } }", True),
    ("{ page { note } }", False),
    ("{ page { inner { total } } }", False),  # under another field: not this one's
    ("{ page { ... on Page { total } } }", True),
    ("{ page { ...Counted } } fragment Counted on Page { note total }", True),
    ("{ page { ...Outer } } fragment Outer on Page { ...Counted } "
     "fragment Counted on Page { total }", True),
    ("{ page { ...Plain } } fragment Plain on Page { note inner { total } }", False),
])
def test_a_field_selected_as_written_or_through_fragments(query: str, expected: bool) -> None:
    assert seen(query) == [expected]


@pytest.mark.parametrize(("query", "expected"), [
    ("{ deep { inner { total } } }", True),
    ("{ deep { total inner { __typename } } }", False),  # the name, not at that path
    ("{ deep { ...Inside } } fragment Inside on Page { inner { ...Total } } "
     "fragment Total on Inner { total }", True),
    ("{ deep { note } }", False),
])
def test_a_field_selected_at_a_path_below(query: str, expected: bool) -> None:
    assert seen(query) == [expected]


def test_asking_leaves_no_reference_cycles() -> None:
    GARBAGE.clear()
    result = SCHEMA.execute_sync(
        "{ collected { ...Outer } } fragment Outer on Page { note ...Counted } "
        "fragment Counted on Page { total inner { total } }")
    assert result.errors is None
    assert GARBAGE == [0]
