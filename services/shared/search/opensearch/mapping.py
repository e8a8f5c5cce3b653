"""How one document type is laid out in an OpenSearch index version: settings, mapping,
and documents to and from ``_source``.

Per schema text field ``f``: ``f`` (stemmed words, for BM25) with a ``f.prefix``
sub-field of unstemmed edge n-grams ("diab" -> "diabetes" must not depend on what the
stemmer makes of a partial word: "infarcti" stems to something that prefixes nothing).
Keyword fields keep their names (``keyword``, or ``boolean``); the identifier is ``key``
with ``key_length``; ``doc_id`` is a sortable copy of ``_id``; ``stored`` holds what the
document type reads back, not indexed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.shared.search.model import Indexed, Schema

# Edge n-grams up to this length serve prefix matching; a longer typed prefix is cut to
# it at search time, so it still matches (slightly more loosely) rather than nothing.
MAX_PREFIX = 30
# A word: a run of letters, digits and private-use characters (as text.words reads them).
_WORD = r"[\p{L}\p{N}\p{Co}]+"
RESERVED = frozenset({"doc_id", "key", "key_length", "stored"})


def check(schema: Schema) -> None:
    names = [f.name for f in schema.text] + [k.name for k in schema.keywords]
    clash = RESERVED.intersection(names)
    if clash or len(set(names)) != len(names):
        raise ValueError(f"{schema.name}: field names must be distinct and not {sorted(RESERVED)}")


def index_body(schema: Schema, *, shards: int = 1, replicas: int = 0) -> dict[str, Any]:
    """Settings and mapping of one index version.

    One shard by default: a catalogue is small (~100k docs), and a single shard keeps
    BM25 statistics exact, so scores do not depend on document routing.
    ``dynamic: strict`` turns a drifting document shape into a loud write error.

    A version keeps the analysis it was created with (queries are analysed by the
    index's own analyzers, so an older version stays consistent and keeps answering);
    a change here reaches a live deployment with a rebuild.
    """
    check(schema)
    text = {"type": "text", "analyzer": "medcode_text"}
    prefix = {
        "type": "text",
        "analyzer": "medcode_prefix",
        "search_analyzer": "medcode_prefix_search",
        "index_options": "docs",  # no positions or frequencies needed for one-token lookups
        "norms": False,
    }
    properties: dict[str, Any] = {
        "doc_id": {"type": "keyword"},
        "stored": {"type": "object", "enabled": False},
    }
    for field in schema.text:
        properties[field.name] = {**text, "fields": {"prefix": prefix}}
    for keyword in schema.keywords:
        properties[keyword.name] = {"type": "boolean" if keyword.kind is bool else "keyword"}
    if schema.key:
        properties["key"] = {"type": "keyword"}
        properties["key_length"] = {"type": "short"}  # orders key-prefix matches
    return {
        "settings": {
            "number_of_shards": shards,
            "number_of_replicas": replicas,
            "analysis": {
                # Words are runs of letters and digits, everything else separates them, as
                # text.words reads them: "40.0-44.9" is 40, 0, 44, 9 and "alzheimer's" is
                # alzheimer, s. The pattern matches the words themselves (group 0), not the
                # separators: osmem, the test server, indexes the matches of a pattern
                # whatever its group, so a separator pattern would index only punctuation.
                "tokenizer": {
                    "medcode_words": {"type": "pattern", "pattern": _WORD, "group": 0},
                },
                "filter": {
                    # "english" is Lucene's Porter stemmer, the algorithm of
                    # services.shared.search.porter, so every backend reduces words alike.
                    "medcode_stem": {"type": "stemmer", "language": "english"},
                    "medcode_edge": {"type": "edge_ngram", "min_gram": 1, "max_gram": MAX_PREFIX},
                    "medcode_cut": {"type": "truncate", "length": MAX_PREFIX},
                },
                "analyzer": {
                    "medcode_text": {
                        "type": "custom",
                        "tokenizer": "medcode_words",
                        "filter": ["lowercase", "asciifolding", "medcode_stem"],
                    },
                    "medcode_prefix": {
                        "type": "custom",
                        "tokenizer": "medcode_words",
                        "filter": ["lowercase", "asciifolding", "medcode_edge"],
                    },
                    "medcode_prefix_search": {
                        "type": "custom",
                        "tokenizer": "medcode_words",
                        "filter": ["lowercase", "asciifolding", "medcode_cut"],
                    },
                },
            },
        },
        "mappings": {"dynamic": "strict", "properties": properties},
    }


def to_source(schema: Schema, indexed: Indexed) -> dict[str, Any]:
    source: dict[str, Any] = {"doc_id": indexed.doc_id, "stored": dict(indexed.stored)}
    for field in schema.text:
        source[field.name] = list(indexed.text.get(field.name, ()))
    for keyword in schema.keywords:
        source[keyword.name] = indexed.keywords.get(keyword.name)
    if schema.key and indexed.key:
        source["key"] = indexed.key
        source["key_length"] = len(indexed.key)
    return source


def stored_of(source: Mapping[str, Any]) -> Mapping[str, Any]:
    return dict(source["stored"])
