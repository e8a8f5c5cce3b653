"""How one document type is laid out in a tantivy index: fields, analysis, documents.

Text is analysed here, in Python, by the shared folding and Porter stemming
(services.shared.search.text), and handed to tantivy as space-separated tokens, so the
embedded index stems exactly as the product's ranker and OpenSearch's Porter filter do.
Per schema text field ``f``:

- ``t.f``: the stems, with frequencies, for BM25;
- ``p.f``: every start (2 to 30 letters) of every folded word as written, documents only:
  a coder typing "infarcti" is on the word "infarction", whose stem "infarct" does not
  begin with it. The same edge n-grams OpenSearch's ``.prefix`` sub-fields hold.

Keyword fields are ``k.name`` (raw, fast: filters and facet counts), the identifier is
``key`` (whole), ``key.p`` (each of its starts) and ``key.order`` (a number that sorts
keys shortest first, then alphabetically: the bindings read only numeric fast fields).
``_id`` is the document id, ``_doc`` the stored JSON a ``DocumentType.load`` reads (text,
stored and never searched; versions created before it was text keep bytes: ``as_text``).
(Versions created before a search read its documents afresh also hold ``_digest``, a
digest of that JSON by which readers kept documents: read by nothing now.) Checkpoints
are documents too, with only ``_cp`` and ``_doc``: that is what makes them atomic with
the change they record (see services.shared.search.embedded.writes).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import orjson
import tantivy

from services.shared.search.model import Indexed, Schema, Value
from services.shared.search.text import stem, words

WORDS = "medcode_ws"  # tokens separated by spaces: the analysis was done in Python
MAX_PREFIX = 30
ID, DOC, CHECKPOINT = "_id", "_doc", "_cp"
KEY, KEY_PREFIX, KEY_ORDER = "key", "key.p", "key.order"


def text_field(name: str) -> str:
    return f"t.{name}"


def prefix_field(name: str) -> str:
    return f"p.{name}"


def keyword_field(name: str) -> str:
    return f"k.{name}"


def keyword_value(value: Value) -> str:
    """A keyword as indexed: booleans as "true"/"false"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def analyzer() -> tantivy.TextAnalyzer:
    return tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace()).build()


def tantivy_schema(schema: Schema) -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field(ID, stored=False, fast=True, tokenizer_name="raw", index_option="basic")
    builder.add_text_field(CHECKPOINT, tokenizer_name="raw", index_option="basic")
    # Text, not bytes: tantivy reads a stored bytes value back byte by byte (10,000
    # instructions a document, 4.9 % of a first-time search's), text in one copy. The
    # bindings index every text field: index.open_index says in a new version's meta.json
    # that this one is not indexed.
    builder.add_text_field(DOC, stored=True, tokenizer_name="raw", index_option="basic")
    for text in schema.text:
        builder.add_text_field(text_field(text.name), tokenizer_name=WORDS, index_option="freq")
        builder.add_text_field(prefix_field(text.name), tokenizer_name=WORDS, index_option="basic")
    for keyword in schema.keywords:
        builder.add_text_field(
            keyword_field(keyword.name), fast=True, tokenizer_name="raw", index_option="basic"
        )
    if schema.key:
        builder.add_text_field(KEY, tokenizer_name="raw", index_option="basic")
        builder.add_text_field(KEY_PREFIX, tokenizer_name="raw", index_option="basic")
        builder.add_unsigned_field(KEY_ORDER, fast=True)
    return builder.build()


def key_order(key: str) -> int:
    """Shortest first, then by the first seven characters (exact for codes, which are at
    most seven long; longer keys of one length tie beyond that)."""
    head = key.encode("utf-8", "replace")[:7].ljust(7, b"\0")
    return (min(len(key), 255) << 56) | int.from_bytes(head, "big")


def stems_of(text: str) -> str:
    return " ".join(stem(w) for w in words(text))


def starts_of(texts: Iterator[str] | list[str]) -> str:
    """Every start of 2 to 30 letters of each distinct folded word of the texts."""
    grams: set[str] = set()
    for text in texts:
        for word in words(text):
            grams.update(word[:n] for n in range(2, min(len(word), MAX_PREFIX) + 1))
    return " ".join(sorted(grams))


def _add_body(doc: tantivy.Document, body: str, as_text: bool) -> None:
    if as_text:
        doc.add_text(DOC, body)
    else:
        doc.add_bytes(DOC, body.encode())


def document(schema: Schema, indexed: Indexed, as_text: bool) -> tantivy.Document:
    doc = tantivy.Document()
    doc.add_text(ID, indexed.doc_id)
    stored = {"id": indexed.doc_id, "doc": indexed.stored}
    body = json.dumps(stored, separators=(",", ":"))
    _add_body(doc, body, as_text)
    for text in schema.text:
        values = list(indexed.text.get(text.name, ()))
        for value in values:
            doc.add_text(text_field(text.name), stems_of(value))
        if starts := starts_of(values):
            doc.add_text(prefix_field(text.name), starts)
    for keyword in schema.keywords:
        if (kept := indexed.keywords.get(keyword.name)) is not None:
            doc.add_text(keyword_field(keyword.name), keyword_value(kept))
    if schema.key and indexed.key:
        doc.add_text(KEY, indexed.key)
        for n in range(1, len(indexed.key) + 1):
            doc.add_text(KEY_PREFIX, indexed.key[:n])
        doc.add_unsigned(KEY_ORDER, key_order(indexed.key))
    return doc


def checkpoint_document(name: str, body: dict[str, Any], as_text: bool) -> tantivy.Document:
    """A checkpoint as a document; its stored JSON names it too (``_cp`` is searched, not
    stored), so that a version can be written again whole from what it stores."""
    doc = tantivy.Document()
    doc.add_text(CHECKPOINT, name)
    _add_body(doc, json.dumps({**body, "name": name}), as_text)
    return doc


def stored(doc: tantivy.Document) -> dict[str, Any]:
    """The stored JSON of a document: {"id": doc id, "doc": what load reads} (text, or bytes
    in a version created before it was text)."""
    raw = doc.get_first(DOC)
    return dict(orjson.loads(raw)) if raw is not None else {}
