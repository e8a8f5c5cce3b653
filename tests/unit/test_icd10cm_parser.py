"""The ICD-10-CM tabular parser: hierarchy, billable flags, notes, 7th characters, errors."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from services.lookup.icd10cm import (
    Tabular,
    TabularEntry,
    TabularError,
    default_tabular_path,
    parse_tabular,
)

SAMPLE = """\
<?xml version="1.0" encoding="utf-8"?>
<ICD10CM.tabular>
  <version>2026</version>
  <introduction>
    <introSection type="title"><title>ICD-10-CM TABULAR LIST</title></introSection>
  </introduction>
  <chapter>
    <name>1</name>
    <desc>Certain infectious and parasitic diseases (A00-B99)</desc>
    <includes>
      <note>diseases generally recognized as   communicable</note>
    </includes>
    <sectionIndex>
      <sectionRef first="A00" last="A09" id="A00-A09">Intestinal infectious diseases</sectionRef>
    </sectionIndex>
    <section id="A00-A09">
      <desc>Intestinal infectious diseases (A00-A09)</desc>
      <excludes2>
        <note>carrier of infectious disease (Z22.-)</note>
      </excludes2>
      <diag>
        <name>A00</name>
        <desc>Cholera</desc>
        <diag>
          <name>A00.0</name>
          <desc>Cholera due to Vibrio cholerae 01, biovar cholerae</desc>
          <inclusionTerm>
            <note>Classical cholera</note>
            <note>
              Asiatic	cholera
            </note>
          </inclusionTerm>
          <excludes1><note>cholera carrier (Z22.1)</note></excludes1>
        </diag>
        <diag>
          <name>A00.9</name>
          <desc> Cholera, unspecified </desc>
          <codeFirst><note>underlying disease</note></codeFirst>
          <useAdditionalCode><note>code for dehydration (E86.0)</note></useAdditionalCode>
          <codeAlso><note>any shock (R57.-)</note></codeAlso>
          <notes><note>A plain note</note></notes>
        </diag>
      </diag>
    </section>
  </chapter>
  <chapter>
    <name>19</name>
    <desc>Injury, poisoning (S00-T88)</desc>
    <section id="S00-T88">
      <desc>Injuries (S00-T88)</desc>
      <diag>
        <name>S72</name>
        <desc>Fracture of femur</desc>
        <sevenChrNote>
          <note>The appropriate 7th character is to be added to all codes from category S72</note>
        </sevenChrNote>
        <sevenChrDef>
          <extension char="A">initial encounter for closed fracture</extension>
          <extension char="B">initial encounter for open fracture type I or II</extension>
          <note>	initial encounter for open fracture NOS</note>
        </sevenChrDef>
        <diag>
          <name>S72.0</name>
          <desc>Fracture of head and neck of femur</desc>
          <diag>
            <name>S72.00</name>
            <desc>Fracture of unspecified part of neck of femur</desc>
            <diag>
              <name>S72.001</name>
              <desc>Fracture of unspecified part of neck of right femur</desc>
            </diag>
          </diag>
        </diag>
        <diag>
          <name>S72.8</name>
          <desc>Other fracture of femur</desc>
          <sevenChrDef>
            <extension char="D">subsequent encounter</extension>
          </sevenChrDef>
        </diag>
      </diag>
      <diag>
        <name>T07</name>
        <desc>Unspecified multiple injuries</desc>
        <sevenChrDef>
          <extension char="A">initial encounter</extension>
          <extension char="S">sequela</extension>
        </sevenChrDef>
      </diag>
      <diag>
        <name>S06</name>
        <desc>Intracranial injury</desc>
        <sevenChrDef>
          <extension char="A">initial encounter</extension>
          <extension char="D">subsequent encounter</extension>
          <extension char="S">sequela</extension>
        </sevenChrDef>
        <diag placeholder="true">
          <name>S06.0X</name>
          <desc>Concussion</desc>
          <diag>
            <name>S06.0X0</name>
            <desc>Concussion without loss of consciousness</desc>
          </diag>
          <diag>
            <name>S06.0X7</name>
            <desc>Concussion with death due to brain injury</desc>
          </diag>
        </diag>
      </diag>
    </section>
  </chapter>
</ICD10CM.tabular>
"""


def write(tmp_path: Path, text: str, name: str = "icd10c-tabular-April-1-2026.xml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def sample(tmp_path: Path) -> Tabular:
    return parse_tabular(write(tmp_path, SAMPLE))


def by_code(tab: Tabular) -> dict[str, TabularEntry]:
    """Diag codes are unique; a block may share its code with a category, so skip blocks."""
    return {e.code: e for e in tab.entries if e.kind != "block"}


def test_header_and_release_from_file_name(sample: Tabular) -> None:
    assert sample.version == "2026"
    assert sample.release == "2026-04-01"


def test_release_can_be_passed_and_is_required_without_a_dated_name(tmp_path: Path) -> None:
    path = write(tmp_path, SAMPLE, name="tabular.xml")
    assert parse_tabular(path, release="2025-10-01").release == "2025-10-01"
    with pytest.raises(TabularError, match="release"):
        parse_tabular(path)


def test_hierarchy_kinds_parents_and_preorder(sample: Tabular) -> None:
    got = [(e.code, e.kind, e.parent, e.chapter) for e in sample.entries[:6]]
    assert got == [
        ("1", "chapter", None, "1"),
        ("A00-A09", "block", "1", "1"),
        ("A00", "category", "A00-A09", "1"),
        ("A00.0", "code", "A00", "1"),
        ("A00.9", "code", "A00", "1"),
        ("19", "chapter", None, "19"),
    ]
    chapter = sample.entries[0]
    assert chapter.title == "Certain infectious and parasitic diseases (A00-B99)"
    block = sample.entries[1]
    assert block.title == "Intestinal infectious diseases (A00-A09)"
    codes = by_code(sample)
    assert codes["S72.001"].parent == "S72.00"
    assert codes["S72.00"].parent == "S72.0"
    assert codes["S72"].parent == "S00-T88"
    assert codes["A00.9"].title == "Cholera, unspecified"  # whitespace normalised


def test_billable_flags(sample: Tabular) -> None:
    codes = by_code(sample)
    assert codes["A00.0"].billable and codes["A00.9"].billable
    # Headers, and leaves that still need a 7th character, are not billable.
    for code in ("1", "A00", "S72", "S72.0", "S72.00", "S72.001", "T07", "S06.0X0"):
        assert not codes[code].billable, code
    assert not any(e.billable for e in sample.entries if e.kind in ("chapter", "block"))
    assert codes["S72.001A"].billable


def test_notes_are_collected_and_normalised(sample: Tabular) -> None:
    codes = by_code(sample)
    assert codes["1"].notes == {"includes": ("diseases generally recognized as communicable",)}
    blocks = [e for e in sample.entries if e.kind == "block"]
    assert blocks[0].notes == {"excludes2": ("carrier of infectious disease (Z22.-)",)}
    assert codes["A00.0"].notes == {
        "inclusion_terms": ("Classical cholera", "Asiatic cholera"),
        "excludes1": ("cholera carrier (Z22.1)",),
    }
    assert codes["A00.9"].notes == {
        "code_first": ("underlying disease",),
        "use_additional_code": ("code for dehydration (E86.0)",),
        "code_also": ("any shock (R57.-)",),
        "notes": ("A plain note",),
    }
    assert codes["A00"].notes == {}
    # A loose <note> inside <sevenChrDef> stays with the 7th-character note.
    assert codes["S72"].notes["seven_character_note"] == (
        "The appropriate 7th character is to be added to all codes from category S72",
        "initial encounter for open fracture NOS",
    )
    assert codes["S72.001A"].notes == {}


def test_seventh_character_generation(sample: Tabular) -> None:
    codes = by_code(sample)
    assert codes["S72"].seven_character == (
        ("A", "initial encounter for closed fracture"),
        ("B", "initial encounter for open fracture type I or II"),
    )
    assert codes["S72.001"].seven_character == ()
    a = codes["S72.001A"]
    assert a.title == (
        "Fracture of unspecified part of neck of right femur, initial encounter for closed fracture"
    )
    assert (a.kind, a.parent, a.chapter, a.seven_character) == ("code", "S72.001", "19", ())
    assert "S72.001B" in codes
    # Generated codes follow their leaf immediately (pre-order).
    order = [e.code for e in sample.entries]
    i = order.index("S72.001")
    assert order[i + 1 : i + 3] == ["S72.001A", "S72.001B"]
    # Placeholder X pads short codes to six characters.
    assert {c for c in codes if c.startswith("T07")} == {"T07", "T07.XXXA", "T07.XXXS"}
    assert codes["T07.XXXS"].title == "Unspecified multiple injuries, sequela"
    assert "S06.0X0D" in codes


def test_nearer_seventh_character_definition_overrides(sample: Tabular) -> None:
    codes = by_code(sample)
    assert codes["S72.8"].seven_character == (("D", "subsequent encounter"),)
    assert {c for c in codes if c.startswith("S72.8")} == {"S72.8", "S72.8XXD"}
    assert codes["S72.8XXD"].title == "Other fracture of femur, subsequent encounter"


def test_s06_death_codes_only_take_initial_encounter(sample: Tabular) -> None:
    codes = by_code(sample)
    assert {c for c in codes if c.startswith("S06.0X7")} == {"S06.0X7", "S06.0X7A"}
    assert {c for c in codes if c.startswith("S06.0X0")} == {
        "S06.0X0",
        "S06.0X0A",
        "S06.0X0D",
        "S06.0X0S",
    }


def test_progress_is_reported(tmp_path: Path) -> None:
    calls: list[int] = []
    tab = parse_tabular(write(tmp_path, SAMPLE), progress=calls.append)
    assert calls == [len(tab.entries)]  # fewer than 5,000 entries: only the final call


def test_truncated_file_names_file_and_line(tmp_path: Path) -> None:
    cut = SAMPLE[: SAMPLE.index("<name>S72.001</name>")]
    path = write(tmp_path, cut)
    with pytest.raises(TabularError) as info:
        parse_tabular(path)
    message = str(info.value)
    assert path.name in message
    assert f"line {cut.count(chr(10)) + 1}" in message
    assert "column" in message


def test_malformed_tag_names_file_line_and_column(tmp_path: Path) -> None:
    bad = SAMPLE.replace("<name>A00.9</name>", "<name>A00.9</nam>")
    line = bad[: bad.index("</nam>")].count("\n") + 1
    path = write(tmp_path, bad)
    with pytest.raises(TabularError, match=rf"{path.name}: line {line}, column \d+: malformed"):
        parse_tabular(path)


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(TabularError, match="line 1"):
        parse_tabular(write(tmp_path, ""))


def test_diag_without_name_is_reported_at_its_line(tmp_path: Path) -> None:
    bad = SAMPLE.replace("<name>A00.9</name>", "")
    diag_at = bad.rindex("<diag>", 0, bad.index("<desc> Cholera, unspecified"))
    line = bad[:diag_at].count("\n") + 1
    path = write(tmp_path, bad)
    with pytest.raises(TabularError, match=rf"{path.name}: line {line}: <diag> without <name>"):
        parse_tabular(path)


def test_no_chapters_is_an_error(tmp_path: Path) -> None:
    text = '<?xml version="1.0"?>\n<ICD10CM.tabular>\n<version>2026</version>\n</ICD10CM.tabular>\n'
    with pytest.raises(TabularError, match="no <chapter>"):
        parse_tabular(write(tmp_path, text))


def test_wrong_root_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TabularError, match=r"line 2: root element is <ICD10PCS.tabular>"):
        parse_tabular(write(tmp_path, '<?xml version="1.0"?>\n<ICD10PCS.tabular/>\n'))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TabularError, match="cannot read"):
        parse_tabular(tmp_path / "icd10c-tabular-April-1-2026.xml")


# -- the shipped CDC file ---------------------------------------------------------------

# Figures for the April 1, 2026 release, cross-checked against the code list shipped
# beside the XML (see test_real_file_matches_code_list).
REAL_ENTRIES = 98_505
REAL_BILLABLE = 74_719


@pytest.fixture(scope="module")
def tab() -> Tabular:
    return parse_tabular(default_tabular_path())


@pytest.fixture(scope="module")
def code_list() -> list[str]:
    path = default_tabular_path().with_name("code-list-April-2026.txt")
    return path.read_text(encoding="utf-8").splitlines()


def test_real_file_counts(tab: Tabular) -> None:
    assert tab.version == "2026" and tab.release == "2026-04-01"
    kinds = Counter(e.kind for e in tab.entries)
    assert kinds["chapter"] == 22
    assert kinds["block"] == 297
    assert kinds["category"] == 1_918
    assert len(tab.entries) == REAL_ENTRIES
    assert sum(e.billable for e in tab.entries) == REAL_BILLABLE


def test_real_file_matches_code_list(tab: Tabular, code_list: list[str]) -> None:
    # Same codes, same multiplicity (a block may share its code with a category, e.g.
    # "B20"), in the same order.
    assert [e.code.replace(".", "") for e in tab.entries] == code_list
    # Billable by the code list's logic: a diagnosis code no other code extends.
    codes = sorted({c for c in code_list if "-" not in c and not c.isdigit()})
    leaves = {c for c, nxt in zip(codes, [*codes[1:], ""], strict=True) if not nxt.startswith(c)}
    assert {e.code.replace(".", "") for e in tab.entries if e.billable} == leaves


def test_real_file_spot_checks(tab: Tabular) -> None:
    codes = by_code(tab)
    i219 = codes["I21.9"]
    assert i219.billable and i219.title == "Acute myocardial infarction, unspecified"
    assert i219.chapter == "9"
    i21 = codes["I21"]
    assert i21.kind == "category" and not i21.billable and i21.parent == "I20-I25"
    assert codes["E11.65"].title == "Type 2 diabetes mellitus with hyperglycemia"
    s = codes["S72.001A"]
    assert s.billable and s.parent == "S72.001"
    assert s.title == (
        "Fracture of unspecified part of neck of right femur, initial encounter for closed fracture"
    )
    assert not codes["S72.001"].billable
    assert codes["T63.441A"].billable
    assert codes["W08.XXXA"].parent == "W08"
    # S06 codes with 6th character 7/8 (death before regaining consciousness) take only A.
    assert {c for c in codes if c.startswith("S06.1X7")} == {"S06.1X7", "S06.1X7A"}
    assert {"S06.1X6A", "S06.1X6D", "S06.1X6S"} <= codes.keys()
