"""Each query text is validated once, by the text, and still refused when invalid."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import ValidationRule
from strawberry.extensions import AddValidationRules

from gateway.validation import ValidatedTexts, Validations

RUNS: list[str] = []


class Counted(ValidationRule):
    """graphql-core makes each rule anew for every validation it runs."""

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        RUNS.append("validated")


@strawberry.type
class Query:
    answer: int = 42


def schema(validations: Validations) -> strawberry.Schema:
    return strawberry.Schema(Query, extensions=[
        lambda: AddValidationRules([Counted]), lambda: ValidatedTexts(validations)])


def test_a_text_asked_again_is_not_validated_again() -> None:
    RUNS.clear()
    composed = schema(Validations(8))
    for _ in range(3):
        assert composed.execute_sync("{ answer }", root_value=Query()).data == {"answer": 42}
    assert RUNS == ["validated"]
    named = composed.execute_sync("query Named { answer }", root_value=Query())
    assert named.data == {"answer": 42}
    assert RUNS == ["validated"] * 2


def test_an_invalid_text_is_refused_every_time() -> None:
    composed = schema(Validations(8))
    for _ in range(2):
        result = composed.execute_sync("{ answer missing }")
        assert result.errors is not None
        assert "Cannot query field 'missing'" in result.errors[0].message


def test_the_oldest_texts_are_forgotten_beyond_the_size() -> None:
    RUNS.clear()
    composed = schema(Validations(2))
    for text in ("{ answer }", "{ a: answer }", "{ b: answer }", "{ answer }"):
        assert composed.execute_sync(text, root_value=Query()).errors is None
    assert len(RUNS) == 4  # the first text was forgotten, so validated again
    assert composed.execute_sync("{ b: answer }", root_value=Query()).errors is None
    assert len(RUNS) == 4
