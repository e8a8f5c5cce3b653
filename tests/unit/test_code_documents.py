"""A code document's own constructor (documents.CodeDocument) keeps what the dataclass
gave: immutable, equal by its fields, its id derived from its system and code."""

from __future__ import annotations

import dataclasses

import pytest

from services.lookup.search.documents import CODES, CodeDocument


def _document(**changes: object) -> CodeDocument:
    fields: dict[str, object] = dict(
        system="ICD10CM", code="I21.9", title="Acute myocardial infarction, unspecified",
        billable=True, kind="code", chapter="9", parent="I21", terms=("heart attack",),
        version=3,
    )
    return CodeDocument(**{**fields, **changes})  # type: ignore[arg-type]


def test_a_document_cannot_be_changed_once_made() -> None:
    # Searches share the documents an index keeps read: none may change one.
    doc = _document()
    with pytest.raises(dataclasses.FrozenInstanceError):
        doc.title = "changed"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        doc.doc_id = "ICD10CM:I22"  # type: ignore[misc]


def test_defaults_and_the_derived_id() -> None:
    doc = CodeDocument("ICD10PCS", "0DTJ4ZZ", "Resection of Appendix", True, "code")
    assert (doc.chapter, doc.parent, doc.terms, doc.version) == (None, None, (), 0)
    assert doc.doc_id == "ICD10PCS:0DTJ4ZZ"


def test_replace_makes_a_new_document_with_its_own_id() -> None:
    doc = _document()
    moved = dataclasses.replace(doc, code="I21.A1", terms=())
    assert (moved.doc_id, moved.terms, moved.title) == ("ICD10CM:I21.A1", (), doc.title)
    assert doc.doc_id == "ICD10CM:I21.9" and doc.terms == ("heart attack",)


def test_equal_and_hashed_by_fields() -> None:
    assert _document() == _document() and hash(_document()) == hash(_document())
    assert _document() != _document(version=4)
    assert repr(_document()).startswith("CodeDocument(system='ICD10CM', code='I21.9'")


def test_stored_and_loaded_back_whole() -> None:
    doc = _document()
    assert CODES.load(CODES.index(doc).stored) == doc
