"""HCPCS Level II and CPT importers, on small synthetic files written here.

Every descriptor below is invented: CPT descriptors are AMA-licensed and are never
written into this repository, and no copy of the HCPCS file is shipped either.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.lookup.application import CodeSets
from services.lookup.cpt import CptError, import_cpt, parse_cpt, section_of
from services.lookup.domain import CodeEntry
from services.lookup.hcpcs import HcpcsError, import_hcpcs, parse_hcpcs

# -- HCPCS fixtures ---------------------------------------------------------------------


def record(
    code: str,
    record_id: str,
    long: str,
    *,
    sequence: int = 100,
    short: str = "",
    added: str = "20000101",
    effective: str = "20000101",
    terminated: str = "",
    action: str = "N",
) -> str:
    """One CMS contractor record, each field at its layout columns (1-based, inclusive)."""
    line = [" "] * 320

    def put(first: int, last: int, text: str) -> None:
        assert len(text) <= last - first + 1, (first, text)
        line[first - 1 : first - 1 + len(text)] = text

    put(1, 5, code)
    put(6, 10, f"{sequence:05d}")
    put(11, 11, record_id)
    put(12, 91, long)
    if record_id in ("4", "8"):
        return "".join(line[:91])  # continuations stop after the description, as CMS's do
    put(92, 119, short)
    put(269, 276, added)
    put(277, 284, effective)
    put(285, 292, terminated)
    put(293, 293, action)
    return "".join(line)


def modifier(mod: str, record_id: str, long: str, **kw: Any) -> str:
    return record(f"   {mod}", record_id, long, **kw)


E0100_FIRST = "Invented walking aid, adjustable height, with synthetic rubber tips and a hand"
E0100_MORE = "grip, each"


def release_1() -> list[str]:
    return [
        modifier("AD", "7", "Invented supervision of more than four concurrent synthetic",
                 short="Invented supervision"),
        modifier("AD", "8", "procedures", sequence=200),
        modifier("ZX", "7", "Invented modifier withdrawn last year", terminated="20251231",
                 action="D"),
        modifier("ZY", "7", "Invented distinct synthetic service"),
        record("A0021", "3", "Invented ambulance service, outside state, per synthetic mile",
               short="Invented ambulance"),
        record("A0080", "3", "Invented non-emergency transport, volunteer, per mile"),
        record("E0100", "3", E0100_FIRST, short="Invented walking aid"),
        record("E0100", "4", E0100_MORE, sequence=200),
        record("J0001", "3", "Invented injection discontinued last year", terminated="20251231",
               action="D"),
        record("J1100", "3", "Injection, invented compound, 1 mg", short="Invented inj 1mg"),
        record("K0001", "3", "Invented temporary wheelchair, ends this year",
               terminated="20261231"),
        record("V2020", "3", "Invented spectacle frame, synthetic"),
    ]


def release_2() -> list[str]:
    """One code revised, one terminated, one added.

    The terminated code is the only one of its section and the added one opens a new
    section, so that no surviving section changes its list of codes.
    """
    lines = release_1()
    lines[9] = record("J1100", "3", "Injection, invented compound, 2 mg", short="Invented inj "
                      "2mg", action="C")
    lines[11] = record("V2020", "3", "Invented spectacle frame, synthetic", terminated="20260331",
                       action="D")
    lines.insert(8, record("G0001", "3", "Invented professional service, synthetic", action="A",
                           added="20260401", effective="20260401"))
    return lines


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(f"{line}\r\n" for line in lines), encoding="ascii")
    return path


@pytest.fixture
def hcpcs_file(tmp_path: Path) -> Path:
    return write(tmp_path / "HCPC2026_JAN_ANWEB.txt", release_1())


def by_code(entries: list[CodeEntry]) -> dict[str, CodeEntry]:
    return {e.code: e for e in entries}


# -- HCPCS parsing ----------------------------------------------------------------------


def test_hcpcs_codes_sections_and_joined_descriptions(hcpcs_file: Path) -> None:
    parsed = parse_hcpcs(hcpcs_file)
    assert parsed.release == "2026-01-01"
    assert [e.code for e in parsed.entries] == [
        "A", "A0021", "A0080", "E", "E0100", "J", "J1100", "K", "K0001", "V", "V2020",
    ]
    entries = by_code(parsed.entries)
    e0100 = entries["E0100"]
    assert e0100.title == f"{E0100_FIRST} {E0100_MORE}"
    assert (e0100.system, e0100.kind, e0100.billable) == ("HCPCS", "code", True)
    assert (e0100.parent, e0100.chapter) == ("E", "E")
    assert e0100.details == {"short_title": "Invented walking aid", "added": "2000-01-01"}
    section = entries["J"]
    assert (section.kind, section.billable, section.parent, section.chapter) == (
        "section", False, None, "J",
    )
    assert section.title == "Drugs Administered Other Than Oral Method"
    assert entries["E"].title == "Durable Medical Equipment"


def test_hcpcs_terminated_codes_left_out_and_future_terminations_kept(
    hcpcs_file: Path,
) -> None:
    entries = by_code(parse_hcpcs(hcpcs_file).entries)
    assert "J0001" not in entries  # terminated 2025-12-31, before the 2026-01-01 release
    k0001 = entries["K0001"]
    assert k0001.billable  # still valid until its last day
    assert k0001.details["terminates"] == "2026-12-31"


def test_hcpcs_modifiers_are_separate(hcpcs_file: Path) -> None:
    parsed = parse_hcpcs(hcpcs_file)
    assert parsed.modifiers == [
        {"modifier": "AD",
         "title": "Invented supervision of more than four concurrent synthetic procedures"},
        {"modifier": "ZY", "title": "Invented distinct synthetic service"},
    ]  # ZX was terminated
    codes = {e.code for e in parsed.entries}
    assert not codes & {"AD", "ZX", "ZY"}


def test_hcpcs_code_added_after_the_release_date_is_not_yet_billable(tmp_path: Path) -> None:
    path = write(tmp_path / "HCPC2026_JAN_ANWEB.txt", [
        record("Q0001", "3", "Invented test effective next quarter", action="A",
               added="20260401", effective="20260401"),
    ])
    q = by_code(parse_hcpcs(path).entries)["Q0001"]
    assert not q.billable
    assert q.details["effective"] == "2026-04-01"


@pytest.mark.parametrize(
    ("name", "release"),
    [
        ("HCPC2026_JAN_ANWEB.txt", "2026-01-01"),
        ("HCPC2025_OCT_ANWEB_v2.txt", "2025-10-01"),
        ("HCPC2024_July_ANWEB.txt", "2024-07-01"),
        ("HCPC2016_CONTR_ANWEB.txt", "2016-01-01"),
    ],
)
def test_hcpcs_release_from_file_name(tmp_path: Path, name: str, release: str) -> None:
    assert parse_hcpcs(write(tmp_path / name, release_1())).release == release


def test_hcpcs_release_required_when_the_name_has_none(tmp_path: Path) -> None:
    path = write(tmp_path / "hcpcs.txt", release_1())
    with pytest.raises(HcpcsError, match=r"hcpcs\.txt: cannot tell the release date"):
        parse_hcpcs(path)
    assert parse_hcpcs(path, release="2026-04-01").release == "2026-04-01"
    with pytest.raises(HcpcsError, match="is not a date"):
        parse_hcpcs(path, release="2026Q2")


def test_hcpcs_progress_reports_the_total(hcpcs_file: Path) -> None:
    seen: list[int] = []
    parse_hcpcs(hcpcs_file, progress=seen.append)
    assert seen[-1] == len(release_1())


def broken(tmp_path: Path, lines: list[str]) -> str:
    path = write(tmp_path / "HCPC2026_JAN_ANWEB.txt", lines)
    with pytest.raises(HcpcsError) as info:
        parse_hcpcs(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    return message


def test_hcpcs_short_record(tmp_path: Path) -> None:
    lines = release_1()
    lines[5] = lines[5][:200]
    message = broken(tmp_path, lines)
    assert "line 6: short record (200 characters)" in message
    assert "column 293" in message


def test_hcpcs_bad_code(tmp_path: Path) -> None:
    lines = release_1()
    lines[5] = record("A00B0", "3", "Invented bad code")
    assert "line 6: bad code 'A00B0'" in broken(tmp_path, lines)


def test_hcpcs_cpt_code_in_the_file_is_refused(tmp_path: Path) -> None:
    lines = [*release_1(), record("99999", "3", "Invented level one code")]
    assert "line 13: code 99999 is a CPT (Level I) code" in broken(tmp_path, lines)


def test_hcpcs_orphan_continuation(tmp_path: Path) -> None:
    lines = release_1()
    lines.insert(4, record("A0021", "4", "continuation before its first line", sequence=200))
    message = broken(tmp_path, lines)
    assert "line 5: continuation (record identification 4) of procedure 'A0021'" in message


def test_hcpcs_continuation_of_another_code(tmp_path: Path) -> None:
    lines = release_1()
    lines[7] = record("E0101", "4", E0100_MORE, sequence=200)
    assert "line 8: continuation (record identification 4) of procedure 'E0101'" in broken(
        tmp_path, lines
    )


def test_hcpcs_unknown_record_id(tmp_path: Path) -> None:
    lines = release_1()
    lines[5] = record("A0080", "5", "Invented record of an unknown kind")
    assert "line 6: unknown record identification '5'" in broken(tmp_path, lines)


def test_hcpcs_duplicate_code_and_bad_date(tmp_path: Path) -> None:
    lines = [*release_1(), record("J1100", "3", "Invented duplicate")]
    assert "line 13: code J1100 is also on line 10" in broken(tmp_path, lines)
    lines = release_1()
    lines[5] = record("A0080", "3", "Invented", terminated="2026AB01")
    assert "line 6: termination date (columns 285-292) '2026AB01'" in broken(tmp_path, lines)


def test_hcpcs_spreadsheet_export_variant(tmp_path: Path) -> None:
    path = tmp_path / "HCPC2026_APR_ANWEB.csv"
    path.write_text(
        "HCPC,SEQNUM,RECID,LONG DESCRIPTION,SHORT DESCRIPTION,ADD DT,ACT EFF DT,TERM DT,"
        "ACTION CD\n"
        'AD,00100,7,"Invented supervision, several procedures",Invented sup,19840101,'
        "20010101,,N\n"
        'E0100,00100,3,"Invented walking aid, adjustable",Invented aid,19900101,19900101,,N\n'
        "E0100,00200,4,with synthetic tips,,,,,\n"
        "J0001,00100,3,Invented withdrawn injection,Invented inj,19900101,19900101,"
        "20260331,D\n",
        encoding="utf-8",
    )
    parsed = parse_hcpcs(path)
    assert parsed.release == "2026-04-01"
    entries = by_code(parsed.entries)
    assert list(entries) == ["E", "E0100"]
    assert entries["E0100"].title == "Invented walking aid, adjustable with synthetic tips"
    assert parsed.modifiers == [
        {"modifier": "AD", "title": "Invented supervision, several procedures"}
    ]


# -- CPT ---------------------------------------------------------------------------------

CPT_LINES = [
    "99213\tSynthetic procedure alpha",
    "00100\tSynthetic procedure beta",
    "10004\tSynthetic procedure gamma",
    "70010 Synthetic procedure delta",  # space-separated, as MEDU/SHORTU have it
    "80047\tSynthetic procedure epsilon",
    "90281\tSynthetic procedure zeta",
    "99500\tSynthetic procedure eta",
    "0001A\tSynthetic procedure theta",
    "0001F\tSynthetic tracking measure iota",
    "0042T\tSynthetic emerging technology kappa",
    "0001U\tSynthetic proprietary laboratory lambda",
    "",
]


def cpt_file(tmp_path: Path, lines: list[str], name: str = "LONGULT.txt") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_cpt_categories_and_sections(tmp_path: Path) -> None:
    parsed = parse_cpt(cpt_file(tmp_path, CPT_LINES), release="2026")
    assert parsed.release == "2026"
    assert [(e.code, e.kind) for e in parsed.entries] == [
        ("EM", "section"), ("99213", "code"),
        ("ANES", "section"), ("00100", "code"),
        ("SURG", "section"), ("10004", "code"),
        ("RAD", "section"), ("70010", "code"),
        ("PATH", "section"), ("80047", "code"),
        ("MED", "section"), ("90281", "code"), ("99500", "code"), ("0001A", "code"),
        ("CAT2", "section"), ("0001F", "code"),
        ("CAT3", "section"), ("0042T", "code"),
        ("PLA", "section"), ("0001U", "code"),
    ]
    entries = by_code(parsed.entries)
    alpha = entries["99213"]
    assert (alpha.system, alpha.title, alpha.billable) == ("CPT", "Synthetic procedure alpha", True)
    assert (alpha.parent, alpha.chapter) == ("EM", "EM")
    assert entries["70010"].title == "Synthetic procedure delta"
    assert entries["EM"].title == "Evaluation and Management"
    assert not entries["EM"].billable
    assert entries["CAT3"].title.startswith("Category III")
    assert entries["PLA"].title == "Proprietary Laboratory Analyses"


@pytest.mark.parametrize(
    ("code", "section"),
    [("99202", "EM"), ("99499", "EM"), ("99199", "MED"), ("99607", "MED"), ("01999", "ANES"),
     ("69990", "SURG"), ("89398", "PATH"), ("0002M", "MAAA")],
)
def test_cpt_section_ranges(code: str, section: str) -> None:
    assert section_of(code) == section


def test_cpt_header_and_notice_lines_skipped(tmp_path: Path) -> None:
    lines = ["Copyright notice line of the synthetic edition", "CPT Code\tLong Descriptor",
             *CPT_LINES]
    parsed = parse_cpt(cpt_file(tmp_path, lines), release="2026")
    assert len([e for e in parsed.entries if e.kind == "code"]) == 11


def test_cpt_tab_variant_with_concept_ids(tmp_path: Path) -> None:
    with_header = [
        "Concept Id\tCPT Code\tLong Descriptor",
        "1000001\t99213\tSynthetic procedure alpha",
        "1000002\t0042T\tSynthetic emerging technology kappa",
    ]
    entries = by_code(parse_cpt(cpt_file(tmp_path, with_header), release="2026").entries)
    assert entries["99213"].title == "Synthetic procedure alpha"
    assert entries["0042T"].parent == "CAT3"
    without_header = with_header[1:]
    path = cpt_file(tmp_path, without_header, "LongDescriptor.txt")
    assert by_code(parse_cpt(path, release="2026").entries)["99213"].title == (
        "Synthetic procedure alpha"
    )


def cpt_error(tmp_path: Path, lines: list[str]) -> str:
    path = cpt_file(tmp_path, lines)
    with pytest.raises(CptError) as info:
        parse_cpt(path, release="2026")
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert "Synthetic" not in message  # a descriptor is never quoted
    return message


def test_cpt_bad_code_names_the_line(tmp_path: Path) -> None:
    lines = [*CPT_LINES[:2], "9921X\tSynthetic procedure omega", *CPT_LINES[2:]]
    assert "line 3: bad code '9921X'" in cpt_error(tmp_path, lines)


def test_cpt_other_errors(tmp_path: Path) -> None:
    assert "line 2: code 99213 is also on line 1" in cpt_error(
        tmp_path, [CPT_LINES[0], "99213\tSynthetic procedure again"]
    )
    assert "line 2: code 00100 has no descriptor" in cpt_error(
        tmp_path, [CPT_LINES[0], "00100"]
    )
    assert "line 2: the line does not start with a CPT code" in cpt_error(
        tmp_path, [CPT_LINES[0], "Synthetic stray text"]
    )
    assert "fixed-field edition (LONGULF.txt)" in cpt_error(
        tmp_path, ["9921301 Synthetic procedure alpha"]
    )
    with pytest.raises(CptError, match="pass release"):
        parse_cpt(cpt_file(tmp_path, CPT_LINES), release=" ")


# -- imports into an embedded application -------------------------------------------------


@pytest.fixture
def app(tmp_path: Path) -> Iterator[CodeSets]:
    application = CodeSets(env={
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(tmp_path / "lookup.sqlite"),
    })
    try:
        yield application
    finally:
        application.close()


def test_import_hcpcs_two_releases(app: CodeSets, tmp_path: Path) -> None:
    first = write(tmp_path / "HCPC2026_JAN_ANWEB.txt", release_1())
    stages: list[str] = []
    summary = import_hcpcs(app, first, progress=lambda stage, done, total: stages.append(stage))
    assert (summary.system, summary.release) == ("HCPCS", "2026-01-01")
    assert (summary.added, summary.revised, summary.deleted, summary.unchanged) == (11, 0, 0, 0)
    assert "parse" in stages and "record" in stages
    code = app.code("HCPCS", "E0100")
    assert code is not None and code.title == f"{E0100_FIRST} {E0100_MORE}"
    reference = app.reference("HCPCS", "modifiers")
    assert reference is not None and [m["modifier"] for m in reference.items] == ["AD", "ZY"]

    second = write(tmp_path / "HCPC2026_APR_ANWEB.txt", release_2())
    summary = import_hcpcs(app, second)
    assert summary.release == "2026-04-01"
    # G0001 added with its section, J1100 revised, V2020 terminated on 2026-03-31 and
    # deleted with its section; sections A, E, J, K and their five codes unchanged.
    assert (summary.added, summary.revised, summary.deleted, summary.unchanged) == (2, 1, 2, 8)
    assert app.code("HCPCS", "V2020") is None and app.code("HCPCS", "V") is None
    added = app.code("HCPCS", "G0001")
    assert added is not None and added.content["parent"] == "G"
    revised = app.code("HCPCS", "J1100")
    assert revised is not None and revised.title == "Injection, invented compound, 2 mg"
    assert [r["release"] for r in app.releases("HCPCS")] == ["2026-01-01", "2026-04-01"]


def test_import_hcpcs_broken_file_records_nothing(app: CodeSets, tmp_path: Path) -> None:
    lines = [*release_1(), record("A00B0", "3", "Invented bad code")]
    with pytest.raises(HcpcsError):
        import_hcpcs(app, write(tmp_path / "HCPC2026_JAN_ANWEB.txt", lines))
    assert app.releases("HCPCS") == []
    assert app.reference("HCPCS", "modifiers") is None


def test_import_cpt(app: CodeSets, tmp_path: Path) -> None:
    summary = import_cpt(app, cpt_file(tmp_path, CPT_LINES), release="2026")
    assert (summary.system, summary.release) == ("CPT", "2026")
    assert (summary.added, summary.revised, summary.deleted) == (20, 0, 0)
    code = app.code("CPT", "0001U")
    assert code is not None and code.title == "Synthetic proprietary laboratory lambda"
    assert code.content["parent"] == "PLA"
    assert app.releases("CPT")[0]["source"] == "LONGULT.txt"
