"""Each query text validated once, remembered by the text.

Clients send the same few documents with different variables. strawberry's
``ValidationCache`` remembers validations by the parsed document, whose hash walks its
whole syntax tree again on every request (about 2 % of a worker's time answering from
the search cache, py-spy); a string's hash is computed once by the string.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document
from strawberry.types import ExecutionContext


class Validations:
    """The errors each (query text, validation rules) gave: shared by the requests of a
    schema, the oldest forgotten beyond ``size`` (unique query texts cannot grow memory)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._errors: OrderedDict[tuple[str, tuple[type, ...]], list[GraphQLError]] = (
            OrderedDict())

    def of(self, context: ExecutionContext, text: str) -> list[GraphQLError]:
        rules = tuple(context.validation_rules)
        key = (text, rules)
        errors = self._errors.get(key)
        if errors is None:
            assert context.graphql_document is not None
            errors = validate_document(context.schema._schema, context.graphql_document, rules)
            self._errors[key] = errors
            if len(self._errors) > self.size:
                self._errors.popitem(last=False)
        else:
            self._errors.move_to_end(key)
        return errors


class ValidatedTexts(SchemaExtension):
    """Validates a request's document through ``Validations``; one with no query text
    (nothing to know it by) is left to strawberry's own validation."""

    def __init__(self, validations: Validations) -> None:
        self.validations = validations

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        text = context.query
        if text is not None and context.graphql_document is not None:
            context.pre_execution_errors = self.validations.of(context, text)
        yield
