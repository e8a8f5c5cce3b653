"""The public schema, composed from every installed product's GraphQL part."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.tools import merge_types

from gateway.telemetry import OperationTelemetry
from gateway.validation import ValidatedTexts, Validations
from services.shared.graphql import UserError
from services.shared.product import Product
from services.shared.settings import Settings

_DOCUMENTS_CACHED = 256


class DuplicateField(Exception):
    pass


def _merge(name: str, types: Sequence[type]) -> type | None:
    """merge_types only warns on a clash; two products answering one field is a bug."""
    if not types:
        return None
    owner: dict[str, str] = {}
    for type_ in types:
        definition = type_.__strawberry_definition__  # type: ignore[attr-defined]
        for field in definition.fields:
            if field.name in owner:
                raise DuplicateField(
                    f"{name}.{field.name} is defined by both {owner[field.name]} and "
                    f"{type_.__module__}"
                )
            owner[field.name] = type_.__module__
    return merge_types(name, tuple(types))


def _should_mask(error: GraphQLError) -> bool:
    original = error.original_error
    # Syntax and validation errors have no original error: they are the caller's to read.
    return original is not None and not isinstance(original, UserError)


def build_schema(products: Sequence[Product], settings: Settings) -> strawberry.Schema:
    query = _merge("Query", [p.query for p in products if p.query])
    if query is None:
        raise RuntimeError("no product provides a Query: is the project installed?")
    mutation = _merge("Mutation", [p.mutation for p in products if p.mutation])
    subscription = _merge("Subscription", [p.subscription for p in products if p.subscription])
    # The depth and alias rules are classes made once: the validation cache is keyed by
    # the rule classes, and a limiter built per request would make new ones every time.
    limits = [
        *QueryDepthLimiter(max_depth=settings.graphql_max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.graphql_max_aliases).validation_rules,
    ]
    # Factories: strawberry builds a fresh extension for every request. Clients send the
    # same few documents with different variables, so each is parsed and validated once
    # (bounded LRU caches: unique query texts cannot grow memory).
    validations = Validations(_DOCUMENTS_CACHED)
    extensions: list[Callable[[], SchemaExtension] | type[SchemaExtension]] = [
        OperationTelemetry,
        lambda: AddValidationRules(limits),
        lambda: MaxTokensLimiter(max_token_count=settings.graphql_max_tokens),
        lambda: ParserCache(maxsize=_DOCUMENTS_CACHED),
        lambda: ValidatedTexts(validations),
    ]
    if not settings.development:
        extensions += [lambda: MaskErrors(should_mask_error=_should_mask), DisableIntrospection]
    return strawberry.Schema(query=query, mutation=mutation, subscription=subscription,
                             extensions=extensions)
