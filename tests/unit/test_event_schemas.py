"""Every published event has a JSON Schema, the schemas are sound, and real payloads fit."""

from __future__ import annotations

import copy
import importlib
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from services.lookup.application import CodeSets
from services.lookup.domain import CodeEntry
from services.lookup.events import CATALOGUE as LOOKUP
from services.shared.event_schemas import (
    ROOT,
    EventSchemaError,
    envelope_schema_path,
    load_schema,
    schema_dir,
    schema_path,
    validate_envelope,
)
from services.shared.product import discover
from services.shared.publishing import EventCatalogue

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
STRICT_SOURCES = {"lookup", "accounts"}  # orphans elsewhere only warn while those take shape


def _catalogue(product: str) -> EventCatalogue | None:
    """A product's ``services.<name>.events.CATALOGUE``, or None when it publishes nothing."""
    module_name = f"services.{product}.events"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name == module_name:
            return None
        raise
    catalogue = getattr(module, "CATALOGUE", None)
    return catalogue if isinstance(catalogue, EventCatalogue) else None


def _catalogues() -> dict[str, EventCatalogue]:
    found = {}
    for product in discover():
        catalogue = _catalogue(product.name)
        if catalogue is not None:
            found[catalogue.source] = catalogue
    return found


CATALOGUES = _catalogues()
SCHEMA_FILES = sorted(schema_dir().rglob("*.json"))


def test_lookup_is_discovered() -> None:
    assert "lookup" in CATALOGUES, "is the project installed (pip install -e .)?"


@pytest.mark.parametrize("source", sorted(CATALOGUES))
def test_every_published_event_has_a_schema(source: str) -> None:
    missing = [
        f"{public.type} v{public.version}: expected {path.relative_to(ROOT)}"
        for public in CATALOGUES[source].events.values()
        if not (path := schema_path(ROOT, source, public.type, public.version)).is_file()
    ]
    assert not missing, "published events without a JSON Schema:\n" + "\n".join(missing)


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: str(p.relative_to(schema_dir())))
def test_schema_files_are_valid_draft_2020_12(path: Path) -> None:
    schema = json.loads(path.read_text(encoding="utf-8"))
    assert schema.get("$schema") == DRAFT_2020_12
    Draft202012Validator.check_schema(schema)
    assert schema.get("$id") and schema.get("description")


def test_lookup_schema_ids_follow_the_convention() -> None:
    for public in LOOKUP.events.values():
        schema = load_schema(ROOT, "lookup", public.type, public.version)
        assert schema["$id"] == f"medcode:events/lookup/{public.type}/v{public.version}"


def test_no_orphan_schemas() -> None:
    published = {
        schema_path(ROOT, source, public.type, public.version)
        for source, catalogue in CATALOGUES.items()
        for public in catalogue.events.values()
    }
    orphans = [
        p for p in SCHEMA_FILES if p != envelope_schema_path() and p not in published
    ]
    strict = [p for p in orphans if p.parent.name in STRICT_SOURCES]
    for path in orphans:
        if path not in strict:
            warnings.warn(f"schema without a published event: {path.relative_to(ROOT)}",
                          stacklevel=1)
    assert not strict, f"schemas without a published event: {strict}"


# -- real payloads -----------------------------------------------------------------------

SEVENTH = (("A", "initial encounter"), ("D", "subsequent encounter"), ("S", "sequela"))


def _release_1() -> list[CodeEntry]:
    def entry(code: str, title: str, kind: str, billable: bool, parent: str | None,
              **extra: Any) -> CodeEntry:
        return CodeEntry("ICD10CM", code, title, kind, billable, parent, "19", **extra)

    return [
        entry("19", "Injury, poisoning and certain other consequences of external causes",
              "chapter", False, None, notes={"excludes2": ("birth trauma (P10-P15)",)}),
        entry("S00-S09", "Injuries to the head", "block", False, "19"),
        entry("S01", "Open wound of head", "category", False, "S00-S09",
              notes={"code_also": ("any associated wound infection",),
                     "excludes1": ("open skull fracture (S02.- with 7th character B)",)},
              seven_character=SEVENTH),
        entry("S01.01", "Laceration without foreign body of scalp", "code", True, "S01",
              notes={"inclusion_terms": ("Scalp laceration NOS",)},
              seven_character=SEVENTH),
        entry("S01.02", "Laceration with foreign body of scalp", "code", True, "S01",
              seven_character=SEVENTH),
    ]


def _release_2() -> list[CodeEntry]:
    entries = [e for e in _release_1() if e.code != "S01.02"]  # dropped -> CodeDeleted
    first = entries[3]
    entries[3] = CodeEntry(  # retitled -> CodeRevised
        first.system, first.code, "Laceration of scalp without foreign body", first.kind,
        first.billable, first.parent, first.chapter, first.notes, first.seven_character,
    )
    return entries


@pytest.fixture
def envelopes(tmp_path: Path) -> Iterator[list[dict[str, Any]]]:
    app = CodeSets(env={
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(tmp_path / "lookup.sqlite"),
    })
    try:
        app.import_release("ICD10CM", "2025", "synthetic-2025.xml", _release_1())
        summary = app.import_release("ICD10CM", "2026", "synthetic-2026.xml", _release_2())
        # S01.01 retitled, and S01 whose children changed when S01.02 went.
        assert (summary.added, summary.revised, summary.deleted) == (0, 2, 1)
        guideline = {"id": "A1", "section": "Conventions", "text": "Seven characters."}
        assert app.publish_reference("ICD10PCS", "guidelines", "2025", [guideline])
        assert not app.publish_reference("ICD10PCS", "guidelines", "2025", [guideline])
        revised = {**guideline, "text": "Always seven characters."}
        assert app.publish_reference("ICD10PCS", "guidelines", "2026", [revised])
        # As consumers receive them: through JSON.
        yield [json.loads(e.to_json()) for e in LOOKUP.iterate(app)]
    finally:
        app.close()


def test_real_lookup_payloads_validate(envelopes: list[dict[str, Any]]) -> None:
    published = {public.type for public in LOOKUP.events.values()}
    assert {e["type"] for e in envelopes} == published  # every event type exercised
    for envelope in envelopes:
        validate_envelope(envelope)


@pytest.fixture
def code_added(envelopes: list[dict[str, Any]]) -> dict[str, Any]:
    found = next(e for e in envelopes if e["type"] == "CodeAdded"
                 and e["payload"]["code"] == "S01.01")
    return copy.deepcopy(found)


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split("/")
    for part in parents:
        data = data[int(part)] if isinstance(data, list) else data[part]
    if value is _DELETE:
        del data[last]
    elif isinstance(data, list):
        data[int(last)] = value
    else:
        data[last] = value


_DELETE = object()


@pytest.mark.parametrize(
    ("change", "value", "failing"),
    [
        ("payload/title", _DELETE, "/payload"),
        ("payload/billable", "yes", "/payload/billable"),
        ("payload/kind", "subcategory", "/payload/kind"),
        ("payload/system", "ICD9CM", "/payload/system"),
        ("payload/parent", 7, "/payload/parent"),
        ("payload/notes/inclusion_terms", [1], "/payload/notes/inclusion_terms/0"),
        ("payload/notes/new_kind", "not a list", "/payload/notes/new_kind"),
        ("payload/seven_character/0", ["A"], "/payload/seven_character/0"),
        ("payload/seven_character/1", ["D", "x", "y"], "/payload/seven_character/1"),
        ("position", 0, "/position"),
        ("id", "not-a-uuid", "/id"),
        ("occurred_at", "yesterday", "/occurred_at"),
        ("occurred_at", "2026-01-01T10:00:00", "/occurred_at"),  # no offset
        ("correlation_id", 5, "/correlation_id"),
        ("surprise", True, "/"),
    ],
)
def test_invalid_envelopes_fail_with_the_path(
    code_added: dict[str, Any], change: str, value: Any, failing: str
) -> None:
    _set(code_added, change, value)
    with pytest.raises(EventSchemaError) as raised:
        validate_envelope(code_added)
    error = raised.value
    assert (error.type, error.version, error.path) == ("CodeAdded", 1, failing)
    assert "CodeAdded v1" in str(error) and failing in str(error)


def test_additive_payload_changes_are_tolerated(code_added: dict[str, Any]) -> None:
    code_added["payload"]["synonyms"] = ["scalp cut"]
    validate_envelope(code_added)


def test_an_event_without_a_schema_fails(code_added: dict[str, Any]) -> None:
    code_added["type"] = "CodeTeleported"
    with pytest.raises(EventSchemaError, match=r"CodeTeleported v1.*CodeTeleported\.v1\.json"):
        validate_envelope(code_added)
