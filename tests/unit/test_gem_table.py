"""The GEM table a serving process keeps: read from the published reference, packed, and
given back as the mappings that were published."""

from __future__ import annotations

from pathlib import Path

from services.lookup.application import CodeSets
from services.lookup.gems import GemTable, group_by_icd9
from services.lookup.values import GemMapping, GemTarget
from services.shared.settings import Settings


def _app(tmp_path: Path) -> CodeSets:
    return CodeSets(env=Settings(data_dir=tmp_path).event_store_env("lookup"))


def _flags(approximate: int, no_map: int, combination: int, scenario: int,
           choice: int) -> dict[str, int]:
    return {"approximate": approximate, "no_map": no_map, "combination": combination,
            "scenario": scenario, "choice_list": choice}


ITEMS = group_by_icd9([
    # Descriptions hold commas and semicolons; the separators of targets and their parts.
    ("V58.67", "Long-term (current) use of insulin; other, NOS", "Z79.4", _flags(1, 0, 0, 0, 0)),
    ("250.00", "Diabetes mellitus, type II", "E11.9", _flags(0, 0, 0, 0, 0)),
    ("996.04", "Mechanical complication", "T82.01XA", _flags(1, 0, 1, 1, 1)),
    ("996.04", "Mechanical complication", "T82.09XA", _flags(1, 0, 1, 1, 2)),
])


def test_the_table_gives_back_each_mapping_as_published(tmp_path: Path) -> None:
    app = _app(tmp_path)
    assert GemTable.read(app, "ICD10CM") is None  # nothing published
    app.publish_reference("ICD10CM", "gems", "2018", ITEMS)
    table = GemTable.read(app, "ICD10CM")
    assert table is not None and table.release == "2018"
    assert table.version == app.reference("ICD10CM", "gems").version  # type: ignore[union-attr]
    for item in ITEMS:
        assert table.get(item["icd9"]) == GemMapping(
            "ICD10CM", item["icd9"], item["description"], "2018",
            [GemTarget(**t) for t in item["targets"]],
        )
    # Typed without the dot, in lower case, with spaces around: the same code.
    assert table.get(" v5867 ") == table.get("V58.67")
    mapping = table.get("996.04")
    assert mapping is not None
    assert [(t.code, t.combination, t.scenario, t.choice_list) for t in mapping.targets] == [
        ("T82.01XA", True, 1, 1), ("T82.09XA", True, 1, 2)
    ]
    assert table.get("999.99") is None


def test_an_empty_reference_is_an_empty_table(tmp_path: Path) -> None:
    app = _app(tmp_path)
    app.publish_reference("ICD10CM", "gems", "2018", [])
    table = GemTable.read(app, "ICD10CM")
    assert table is not None and table.get("250.00") is None
