"""Plans as OpenSearch searches: the candidates' disjoint parts and the facets' aggregations.

Semantics (the backend contract, tests/integration/test_search_contract.py): a document
matches if its key starts with ``plan.key`` OR its text fields match the words (all or
any of them; the last one also as a word prefix). Key matches come first, shortest key
first; then word matches by BM25, each field boosted by its schema weight. The two parts
are disjoint, so their hit counts add up to the total.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from services.shared.search.model import FacetGroup, Facets, QueryPlan, Schema, Value

_PREFIX_BOOST = 0.5  # a word completed from a prefix counts less than a whole word
# Terms aggregations list this many values at most: far more than any facet has, so
# every shard reports every value and the counts are exact.
_FACET_VALUES = 1000

def filters(plan: QueryPlan, *, without: str | None = None) -> list[dict[str, Any]]:
    """The plan's filters, leaving out the one on the field ``without`` names."""
    return [{"terms": {name: list(values)}} for name, values in plan.filters_without(without)]


def _fields(schema: Schema, suffix: str = "") -> list[str]:
    return [f"{f.name}{suffix}^{f.boost}" for f in schema.text]


def _word_clause(schema: Schema, word: str, *, prefix: bool) -> dict[str, Any]:
    """One word in any text field; ``prefix`` also accepts words it begins."""
    whole = {
        "multi_match": {
            "query": word,
            "fields": _fields(schema),
            "operator": "and",  # should the analyzer split a word, all parts must match
        }
    }
    if not prefix:
        return whole
    begun = {
        "multi_match": {
            "query": word,
            "fields": _fields(schema, ".prefix"),
            "operator": "and",
            "boost": _PREFIX_BOOST,
        }
    }
    return {"bool": {"should": [whole, begun], "minimum_should_match": 1}}


def _words_query(schema: Schema, plan: QueryPlan) -> dict[str, Any]:
    last = len(plan.words) - 1 if plan.prefix else -1
    clauses = [_word_clause(schema, w, prefix=i == last) for i, w in enumerate(plan.words)]
    if plan.match_all:
        return {"bool": {"must": clauses}}
    return {"bool": {"should": clauses, "minimum_should_match": 1}}


def parts(schema: Schema, plan: QueryPlan, kept: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the plan matches as disjoint searches, best first: key-prefix matches, then
    word matches that are not key matches. Candidates and facets both read these, so
    they count the very same entries."""
    found: list[dict[str, Any]] = []
    key = plan.key if schema.key else None
    key_match = {"prefix": {"key": key}}
    if key:
        found.append(
            {
                "query": {"bool": {"filter": [*kept, key_match]}},
                "sort": [{"key_length": "asc"}, {"key": "asc"}, {"doc_id": "asc"}],
            }
        )
    if plan.words:
        query: dict[str, Any] = {"must": [_words_query(schema, plan)], "filter": kept}
        if key:  # already returned by the key search
            query["must_not"] = [key_match]
        found.append({"query": {"bool": query}, "sort": ["_score", {"doc_id": "asc"}]})
    return found


def facet_aggs(schema: Schema, plan: QueryPlan) -> dict[str, Any]:
    """One filter aggregation per group, holding every filter but the group's own."""

    def by(fields: tuple[str, ...]) -> dict[str, Any]:
        agg: dict[str, Any] = {"terms": {"field": fields[0], "size": _FACET_VALUES}}
        if len(fields) > 1:
            agg["aggs"] = {"values": by(fields[1:])}
        return agg

    return {
        group.name: {
            "filter": {"bool": {"filter": filters(plan, without=group.ignores)}},
            "aggs": {"values": by(group.fields)},
        }
        for group in schema.facets
    }


def read_facets(schema: Schema, aggs: Mapping[str, Any]) -> Facets:
    groups: dict[str, dict[Hashable, int]] = {}
    for group in schema.facets:
        found: dict[Hashable, int] = {}
        _read(schema, group, group.fields, aggs[group.name]["values"], (), found)
        groups[group.name] = found
    return Facets(groups)


def _read(
    schema: Schema,
    group: FacetGroup,
    fields: tuple[str, ...],
    agg: Mapping[str, Any],
    outer: tuple[Value, ...],
    into: dict[Hashable, int],
) -> None:
    kind = schema.keyword(fields[0]).kind
    for bucket in agg["buckets"]:
        raw = bucket["key"]
        # A boolean's key is 1 or 0 (key_as_string "true"): never bool() a string.
        value: Value = raw in (True, 1, "true") if kind is bool else str(raw)
        if len(fields) > 1:
            _read(schema, group, fields[1:], bucket["values"], (*outer, value), into)
        elif n := int(bucket["doc_count"]):
            into[(*outer, value) if outer else value] = n
