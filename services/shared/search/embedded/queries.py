"""Plans as tantivy queries: candidates in the contract's order, counts, facets.

The semantics are the backend contract's (tests/integration/test_search_contract.py),
as OpenSearch defines them:

- a document matches if its key starts with ``plan.key`` or its text fields match the
  words; every word (``match_all``) or any word, each in any text field, stemmed; the
  last word (``QueryPlan.prefix``) also as the start of a word;
- key matches come first, shortest key first, then by key and doc id; then the word
  matches that are not key matches, by the sum over words of the best field's BM25
  (times the field's boost), a prefix completed scoring like OpenSearch's norm-free
  ``.prefix`` fields: half the prefix's idf times the field's boost; doc id breaks ties;
- filters apply to both; ``total`` counts every match once (exactly when the plan asks
  for a count, else at least what is returned, and more when more match);
- facets count the same matches per ``FacetGroup``, each without its own filter.

Where matches tie at a window's edge, which of them are returned is tantivy's own order:
segment, then address. A version keeps each segment's documents in doc id order
(index.open_index), so within a segment the doc id breaks such ties, as OpenSearch's sort
does; a version written in several segments breaks them by segment first, until
compacted into one (as a rebuild leaves it). Such ties are common (a word cut short
scores a constant; many titles are alike): 1,808 of the 2,050 windows the development
queries filled ended inside one. Within what is returned, the doc id breaks ties too.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from typing import Any

import tantivy
from tantivy import Occur, Query

from services.shared.search.embedded.layout import (
    KEY_ORDER,
    KEY_PREFIX,
    keyword_field,
    keyword_value,
    prefix_field,
    text_field,
)
from services.shared.search.model import QueryPlan, Schema, Value
from services.shared.search.text import stem, words

_PREFIX_WEIGHT = 0.5  # a word completed from a prefix counts less than a whole word
_FACET_VALUES = 1000
_MAX_KEY_MATCHES = 10_000  # key matches read to order them (a key of 3+ characters)

Hit = tuple[float, tantivy.DocAddress]


def _filter(schema: tantivy.Schema, field: str, values: tuple[Value, ...]) -> Query:
    terms = [keyword_value(v) for v in values]
    name = keyword_field(field)
    if len(terms) == 1:
        return Query.term_query(schema, name, terms[0])
    return Query.term_set_query(schema, name, terms)


def filters(
    schema: tantivy.Schema, plan: QueryPlan, without: str | None = None
) -> list[tuple[Occur, Query]]:
    """The plan's filters as non-scoring required clauses."""
    return [
        (Occur.Must, Query.const_score_query(_filter(schema, name, values), 0.0))
        for name, values in plan.filters_without(without)
    ]


class Planner:
    """Builds the queries of one schema's plans against one searcher (for idf)."""

    def __init__(self, schema: Schema, tschema: tantivy.Schema, searcher: tantivy.Searcher):
        self.schema = schema
        self.tschema = tschema
        self.searcher = searcher

    def _whole(self, word: str) -> Query | None:
        """One word in any text field, the best field's score; every token of it."""
        parts = [stem(w) for w in words(word)]
        if not parts:
            return None
        per_token = []
        for part in parts:
            # Only the fields holding the token: a field without it adds nothing to the
            # best field's score, and left out, a token held by one field is that field's
            # postings alone rather than a union (tantivy refills a union's window of
            # 4,096 documents at each seek of an intersection).
            per_token.append(_best_field([
                Query.boost_query(Query.term_query(self.tschema, name, part), f.boost)
                for f in self.schema.text
                if self.searcher.doc_freq(name := text_field(f.name), part)
            ]))
        if len(per_token) == 1:
            return per_token[0]
        return Query.boolean_query([(Occur.Must, q) for q in per_token])

    def _begun(self, prefix: str) -> Query | None:
        """Words the prefix begins, in any text field: a constant per field, as
        OpenSearch scores a docs-only, norm-free field: boost x idf."""
        folded = words(prefix)
        if len(folded) != 1:
            return None
        start = folded[0][:30]
        n_docs = max(self.searcher.num_docs, 1)
        fields = []
        for f in self.schema.text:
            name = prefix_field(f.name)
            df = self.searcher.doc_freq(name, start)
            if df == 0:
                continue
            idf = math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))
            term = Query.term_query(self.tschema, name, start)
            fields.append(Query.const_score_query(term, _PREFIX_WEIGHT * f.boost * idf))
        return _best_field(fields)

    def words_query(self, plan: QueryPlan) -> Query | None:
        prefix = plan.prefix
        clauses: list[Query] = []
        for i, word in enumerate(plan.words):
            whole = self._whole(word)
            if prefix is not None and i == len(plan.words) - 1:
                begun = self._begun(word)
                either = [q for q in (whole, begun) if q is not None]
                clause = (
                    Query.boolean_query([(Occur.Should, q) for q in either]) if either else None
                )
            else:
                clause = whole
            if clause is None:
                if plan.match_all:
                    return Query.empty_query()
                continue
            clauses.append(clause)
        if not clauses:
            return None
        occur = Occur.Must if plan.match_all else Occur.Should
        return Query.boolean_query([(occur, c) for c in clauses])

    def key_query(self, plan: QueryPlan) -> Query | None:
        if not plan.key or not self.schema.key:
            return None
        return Query.term_query(self.tschema, KEY_PREFIX, plan.key)

    def parts(self, plan: QueryPlan, without: str | None = None) -> list[Query]:
        """What the plan matches as disjoint queries, each with its filters: key
        matches, then word matches that are not key matches."""
        kept = filters(self.tschema, plan, without)
        found: list[Query] = []
        key = self.key_query(plan)
        if key is not None:
            found.append(Query.boolean_query([(Occur.Must, key), *kept]))
        matched = self.words_query(plan) if plan.words else None
        if matched is not None:
            clauses = [(Occur.Must, matched), *kept]
            if key is not None:
                clauses.append((Occur.MustNot, key))
            found.append(Query.boolean_query(clauses))
        return found


def _best_field(fields: list[Query]) -> Query:
    """The best of the fields' scores: one field's query alone, as a union of one would
    only add its refills; none matches nothing."""
    if not fields:
        return Query.empty_query()
    if len(fields) == 1:
        return fields[0]
    return Query.disjunction_max_query(fields)


def key_hits(
    searcher: tantivy.Searcher, query: Query, limit: int
) -> tuple[list[Hit], int]:
    """Key matches, shortest key first, then by key; and how many match."""
    result = searcher.search(query, _MAX_KEY_MATCHES, count=True)
    addresses = [address for _, address in result.hits]
    if not addresses:
        return [], matched(result)
    orders = searcher.fast_field_values(KEY_ORDER, addresses)
    keyed = zip((first_value(o) for o in orders), addresses, strict=True)
    ranked = sorted(keyed, key=lambda h: h[0])
    return [(0.0, address) for _, address in ranked[:limit]], matched(result)


def word_hits(
    searcher: tantivy.Searcher, query: Query, limit: int, count: bool
) -> tuple[list[Hit], int]:
    """Word matches, best first (the caller breaks ties by doc id); how many match."""
    if limit <= 0 and not count:
        return [], 0
    # One more than asked: without a count, it tells that more match.
    result = searcher.search(query, max(limit, 0) + 1, count=count)
    hits: list[Hit] = list(result.hits)
    more = len(hits) > limit
    hits = hits[: max(limit, 0)]
    total = matched(result) if count else len(hits) + more
    return hits, total


def matched(result: tantivy.SearchResult) -> int:
    """How many documents a search matched (asked with ``count=True``; the bindings'
    type stubs leave the attribute out)."""
    return int(getattr(result, "count", 0) or 0)


def first_value(values: Any) -> Any:
    """A fast field's value for one document (the bindings give a list per document)."""
    if isinstance(values, list):
        return values[0] if values else ""
    return values


def facet_counts(
    searcher: tantivy.Searcher, planner: Planner, plan: QueryPlan
) -> dict[str, dict[Hashable, int]]:
    counts: dict[str, dict[Hashable, int]] = {}
    for group in planner.schema.facets:
        found: dict[Hashable, int] = {}
        for query in planner.parts(plan, without=group.ignores):
            result = searcher.aggregate(query, {"g": _terms_agg(group.fields)})
            _read(planner.schema, group.fields, result["g"], (), found)
        counts[group.name] = found
    return counts


def _terms_agg(fields: tuple[str, ...]) -> dict[str, Any]:
    agg: dict[str, Any] = {"terms": {"field": keyword_field(fields[0]), "size": _FACET_VALUES}}
    if len(fields) > 1:
        agg["aggs"] = {"g": _terms_agg(fields[1:])}
    return agg


def _read(
    schema: Schema,
    fields: tuple[str, ...],
    result: Mapping[str, Any],
    outer: tuple[Value, ...],
    into: dict[Hashable, int],
) -> None:
    kind = schema.keyword(fields[0]).kind
    for bucket in result.get("buckets", ()):
        raw = bucket["key"]
        value: Value = raw in (True, "true") if kind is bool else str(raw)
        if len(fields) > 1:
            _read(schema, fields[1:], bucket["g"], (*outer, value), into)
            continue
        key: Hashable = (*outer, value) if outer else value
        if n := int(bucket["doc_count"]):
            into[key] = into.get(key, 0) + n
