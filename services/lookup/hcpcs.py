"""Reader for the CMS HCPCS Level II alpha-numeric file (``HCPC<year>_<MON>_ANWEB.txt``).

CMS publishes HCPCS Level II (public domain) as a fixed-width "contractor record" text
file, one 320-character record per line (CMS ``HCPC<year>_recordlayout.txt``; some
editions trim the trailing filler, so a first-line record ends at column 293 at the
earliest). The columns read here, 1-based and inclusive:

======  ==========================================================================
1-5     HCPCS code (``J1100``); for a modifier, 1-3 blank and the modifier in 4-5
6-10    sequence number (by 100s: groups the lines of one code)
11      record identification: 3 first line of a procedure, 4 its continuation,
        7 first line of a modifier, 8 its continuation
12-91   long description (80 characters a line; continuations carry the rest)
92-119  short description (first lines only)
269-276 date the code was added (YYYYMMDD)
277-284 action effective date (YYYYMMDD)
285-292 termination date: the last day the code may be used (YYYYMMDD, or blank)
293     action code (A add, C/B/S description change, D discontinue, R reactivate...)
======  ==========================================================================

Only first-line records carry columns 92 onwards; a continuation line may stop at
column 91. The pricing, coverage, BETOS... columns are not read: they are Medicare
payment policy, not the code set.

A code whose termination date falls before the release date is no longer in the code
set and is left out, so the next import records it as deleted. A code added (or
reactivated) with an effective date after the release date is kept but not billable
until then. Modifiers are returned apart from the codes: they qualify codes rather than
being reported alone, and are published as the ``modifiers`` reference.

The "D" codes are CDT (dental) codes, whose descriptors the ADA licenses to CMS; they
are imported as the file has them, like the rest.

The spreadsheet edition (``..._ANWEB.xlsx``) exported to CSV or tab-separated text is
read too: its header row names the columns (``HCPC``, ``LONG DESCRIPTION``,
``TERM DT``...).

The whole file is parsed before anything is returned: a broken file raises
``HcpcsError`` naming the file, the line and what is wrong, and nothing is imported.

Longer than 400 lines on purpose: one reader of one file format, read top-down from
the record layout to the release it builds; splitting it would scatter the layout.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.lookup.application import CodeSets, ImportSummary, Progress
from services.lookup.domain import MONTHS, CodeEntry, ReleaseFileError

__all__ = [
    "SECTION_TITLES",
    "HcpcsError",
    "HcpcsRelease",
    "import_hcpcs",
    "parse_hcpcs",
]

PROGRESS_EVERY = 5_000

# Fixed-width columns as slices (the layout's 1-based inclusive columns, see above).
CODE = slice(0, 5)
MODIFIER = slice(3, 5)
SEQUENCE = slice(5, 10)
RECORD_ID = slice(10, 11)
LONG_DESCRIPTION = slice(11, 91)
SHORT_DESCRIPTION = slice(91, 119)
ADDED = slice(268, 276)
EFFECTIVE = slice(276, 284)
TERMINATION = slice(284, 292)
ACTION = slice(292, 293)
FIRST_LINE_LENGTH = 293  # a first-line record reaches at least the action code
CONTINUATION_LENGTH = 11  # a continuation needs at least its record identification

PROCEDURE, PROCEDURE_MORE, MODIFIER_FIRST, MODIFIER_MORE = "3", "4", "7", "8"

# HCPCS Level II sections by first letter, after the headings of the CMS Level II code
# book. F, I, N, O, W, X, Y and Z are unused; a letter CMS opens later gets a plain name.
SECTION_TITLES: dict[str, str] = {
    "A": "Transportation, Medical and Surgical Supplies, Miscellaneous and Experimental",
    "B": "Enteral and Parenteral Therapy",
    "C": "Outpatient Prospective Payment System (Temporary Codes)",
    "D": "Dental Procedures",
    "E": "Durable Medical Equipment",
    "G": "Procedures and Professional Services (Temporary Codes)",
    "H": "Alcohol and Drug Abuse Treatment and Behavioral Health Services",
    "J": "Drugs Administered Other Than Oral Method",
    "K": "Durable Medical Equipment for Medicare Administrative Contractors (Temporary Codes)",
    "L": "Orthotic and Prosthetic Procedures and Devices",
    "M": "Other Medical Services",
    "P": "Pathology and Laboratory Services",
    "Q": "Miscellaneous Services (Temporary Codes)",
    "R": "Diagnostic Radiology Services",
    "S": "Temporary National Codes (Non-Medicare)",
    "T": "National Codes Established for State Medicaid Agencies",
    "U": "Coronavirus Laboratory Tests (Temporary Codes)",
    "V": "Vision, Hearing and Speech-Language Pathology Services",
}

_CODE_RE = re.compile(r"[A-Z][0-9]{4}")
_MODIFIER_RE = re.compile(r"[A-Z0-9]{2}")
_NAME_RE = re.compile(r"HCPC(\d{4})_([A-Za-z]+)", re.IGNORECASE)
_MONTHS = tuple(month[:3] for month in MONTHS)
_ADVICE = (
    "The HCPCS file is not usable; download the alpha-numeric HCPCS file again from CMS "
    "(the HCPC<year>_<month>_ANWEB text file) or fix it at that place."
)


class HcpcsError(ReleaseFileError):
    """The HCPCS file cannot be read; the message says where and what to do."""


@dataclass(frozen=True)
class HcpcsRelease:
    """A complete HCPCS Level II release: sections and codes, and the modifiers apart."""

    release: str
    entries: list[CodeEntry]
    modifiers: list[dict[str, str]]


@dataclass
class _Record:
    """One line of the file, whichever edition it came from, before it is understood."""

    line: int
    code: str  # columns 1-5 as they are (a modifier keeps its three leading blanks)
    record_id: str
    long: str
    short: str = ""
    added: dt.date | None = None
    effective: dt.date | None = None
    terminated: dt.date | None = None
    action: str = ""


@dataclass
class _Item:
    """A procedure or modifier being assembled from its first line and continuations."""

    code: str
    first: _Record
    parts: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return " ".join(" ".join(self.parts).split())


def _release_from_name(name: str) -> str | None:
    """``HCPC2026_JAN_ANWEB.txt`` -> ``2026-01-01``; the annual ``_CONTR_`` file is January."""
    m = _NAME_RE.search(name)
    if not m:
        return None
    year, word = int(m.group(1)), m.group(2).lower()
    if word == "contr":
        month = 1
    elif word in _MONTHS:
        month = _MONTHS.index(word) + 1
    elif word in MONTHS:
        month = MONTHS.index(word) + 1
    else:
        return None
    return dt.date(year, month, 1).isoformat()


def _decode(raw: bytes) -> str:
    """CMS files are ASCII in practice; a stray Windows-1252 byte must not stop an import."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


class _Reader:
    """One pass over one file; see ``parse_hcpcs``."""

    def __init__(
        self, path: Path, release: str, on: dt.date, progress: Callable[[int], None] | None
    ) -> None:
        self.path = path
        self.release = release
        self.on = on
        self.progress = progress
        self.procedures: dict[str, _Item] = {}
        self.modifiers: dict[str, _Item] = {}
        self.current: _Item | None = None
        self.current_is_modifier = False
        self.count = 0

    def error(self, line: int, what: str) -> HcpcsError:
        return HcpcsError(f"{self.path}: line {line}: {what}. {_ADVICE}")

    # -- reading -------------------------------------------------------------------

    def run(self) -> HcpcsRelease:
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise HcpcsError(
                f"{self.path}: cannot read the HCPCS file ({exc.strerror or exc}); "
                "check the path"
            ) from exc
        lines = data.splitlines()
        first = next((_decode(raw) for raw in lines if raw.strip()), None)
        if first is None:
            raise self.error(1, "the file is empty")
        records = self.delimited(data) if self.is_header(first) else self.fixed(lines)
        for record in records:
            self.add(record)
        if not self.procedures:
            raise HcpcsError(
                f"{self.path}: no procedure records (record identification 3) in the file. "
                f"{_ADVICE}"
            )
        return self.result()

    @staticmethod
    def is_header(line: str) -> bool:
        """The spreadsheet export's header row; a fixed-width record never starts so."""
        text = line.lstrip("\ufeff")
        for delimiter in ("\t", ","):
            if delimiter in text:
                head = re.sub(r"[^A-Z]", "", text.split(delimiter, 1)[0].upper())
                if head in ("HCPC", "HCPCS", "HCPCSCODE"):
                    return True
        return False

    def fixed(self, lines: list[bytes]) -> Iterator[_Record]:
        for number, raw in enumerate(lines, 1):
            text = _decode(raw).rstrip("\r\n")
            if number == 1:
                text = text.lstrip("\ufeff")
            if not text.strip():
                continue
            if len(text) < CONTINUATION_LENGTH:
                raise self.error(
                    number,
                    f"short record ({len(text)} characters): every record has at least "
                    "the code, sequence number and record identification (columns 1-11)",
                )
            record_id = text[RECORD_ID]
            sequence = text[SEQUENCE]
            if not sequence.isdigit():
                raise self.error(
                    number,
                    f"sequence number {sequence!r} in columns 6-10 is not a number; the "
                    "record is misaligned",
                )
            if record_id in (PROCEDURE, MODIFIER_FIRST):
                if len(text) < FIRST_LINE_LENGTH:
                    raise self.error(
                        number,
                        f"short record ({len(text)} characters): a first-line record "
                        f"reaches at least column {FIRST_LINE_LENGTH} (the action code)",
                    )
                yield _Record(
                    line=number,
                    code=text[CODE],
                    record_id=record_id,
                    long=text[LONG_DESCRIPTION],
                    short=text[SHORT_DESCRIPTION].strip(),
                    added=self.date(number, text[ADDED], "added date (columns 269-276)"),
                    effective=self.date(
                        number, text[EFFECTIVE], "action effective date (columns 277-284)"
                    ),
                    terminated=self.date(
                        number, text[TERMINATION], "termination date (columns 285-292)"
                    ),
                    action=text[ACTION].strip(),
                )
            else:
                yield _Record(
                    line=number, code=text[CODE], record_id=record_id,
                    long=text[LONG_DESCRIPTION],
                )

    def delimited(self, data: bytes) -> Iterator[_Record]:
        text = _decode(data).lstrip("\ufeff")
        first_line = text.split("\n", 1)[0]
        delimiter = "\t" if "\t" in first_line else ","
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        header = next(reader)
        names = [re.sub(r"[^A-Z0-9]", "", h.upper()) for h in header]

        def column(*aliases: str, required: bool = False) -> int | None:
            for i, name in enumerate(names):
                if name in aliases:
                    return i
            if required:
                raise self.error(
                    reader.line_num,
                    f"the header has no {aliases[0]} column (found: {', '.join(header)})",
                )
            return None

        code_col = column("HCPC", "HCPCS", "HCPCSCODE", required=True)
        long_col = column("LONGDESCRIPTION", "LONGDESC", required=True)
        assert code_col is not None and long_col is not None
        rid_col = column("RECID", "RIC", "RECORDID")
        short_col = column("SHORTDESCRIPTION", "SHORTDESC")
        added_col = column("ADDDT", "ADDDATE")
        effective_col = column("ACTEFFDT", "ACTIONEFFECTIVEDATE", "EFFECTIVEDATE")
        term_col = column("TERMDT", "TERMDATE", "TERMINATIONDATE")
        action_col = column("ACTIONCD", "ACTIONCODE", "ACTION")

        def get(row: list[str], col: int | None) -> str:
            return row[col].strip() if col is not None and col < len(row) else ""

        for row in reader:
            number = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            code = get(row, code_col).upper()
            modifier = len(code) == 2
            record_id = get(row, rid_col) or (MODIFIER_FIRST if modifier else PROCEDURE)
            yield _Record(
                line=number,
                code=f"   {code}" if modifier else code,
                record_id=record_id,
                long=get(row, long_col),
                short=get(row, short_col),
                added=self.date(number, get(row, added_col), "added date"),
                effective=self.date(number, get(row, effective_col), "action effective date"),
                terminated=self.date(number, get(row, term_col), "termination date"),
                action=get(row, action_col),
            )

    def date(self, line: int, text: str, what: str) -> dt.date | None:
        """YYYYMMDD in the text file; the spreadsheet may give YYYY-MM-DD or M/D/YYYY."""
        value = text.strip()
        if not value:
            return None
        for fmt in ("%Y%m%d", "%Y-%m-%d", "%m/%d/%Y"):
            try:
                return dt.datetime.strptime(value, fmt).date()
            except ValueError:
                continue
        raise self.error(line, f"{what} {value!r} is not a date (YYYYMMDD)")

    # -- assembling ----------------------------------------------------------------

    def add(self, record: _Record) -> None:
        self.count += 1
        if self.progress is not None and self.count % PROGRESS_EVERY == 0:
            self.progress(self.count)
        rid = record.record_id
        if rid == PROCEDURE:
            code = record.code.strip()
            if not _CODE_RE.fullmatch(code):
                raise self.error(record.line, self.bad_code(code))
            self.open(record, code, self.procedures, modifier=False)
        elif rid == MODIFIER_FIRST:
            modifier = record.code[MODIFIER].strip() if len(record.code) == 5 else ""
            if record.code[:3].strip() or not _MODIFIER_RE.fullmatch(modifier):
                raise self.error(
                    record.line,
                    f"bad modifier {record.code.strip()!r}: a modifier record has columns 1-3 "
                    "blank and two letters or digits in columns 4-5",
                )
            if modifier.isdigit():
                raise self.error(
                    record.line,
                    f"modifier {modifier} is a CPT (Level I) modifier, licensed by the AMA "
                    "and not part of the alpha-numeric HCPCS file",
                )
            self.open(record, modifier, self.modifiers, modifier=True)
        elif rid in (PROCEDURE_MORE, MODIFIER_MORE):
            wants_modifier = rid == MODIFIER_MORE
            code = record.code[MODIFIER].strip() if wants_modifier else record.code.strip()
            current = self.current
            if current is None or self.current_is_modifier != wants_modifier or (
                current.code != code
            ):
                kind = "modifier" if wants_modifier else "procedure"
                first = MODIFIER_FIRST if wants_modifier else PROCEDURE
                raise self.error(
                    record.line,
                    f"continuation (record identification {rid}) of {kind} {code!r} does not "
                    f"follow that {kind}'s first line (record identification {first})",
                )
            current.parts.append(record.long.strip())
        else:
            raise self.error(
                record.line,
                f"unknown record identification {rid!r} in column 11 (expected 3, 4, 7 or 8)",
            )

    @staticmethod
    def bad_code(code: str) -> str:
        if re.fullmatch(r"[0-9]{4}[0-9A-Z]", code):
            return (
                f"code {code} is a CPT (Level I) code: use the alpha-numeric HCPCS file "
                "(ANWEB), not one that includes CPT; CPT is imported separately under licence"
            )
        return f"bad code {code!r}: an HCPCS Level II code is a letter and four digits"

    def open(
        self, record: _Record, code: str, items: dict[str, _Item], *, modifier: bool
    ) -> None:
        if code in items:
            kind = "modifier" if modifier else "code"
            raise self.error(
                record.line, f"{kind} {code} is also on line {items[code].first.line}"
            )
        if not record.long.strip():
            raise self.error(record.line, f"{code} has no long description (columns 12-91)")
        item = _Item(code=code, first=record, parts=[record.long.strip()])
        items[code] = item
        self.current = item
        self.current_is_modifier = modifier

    def in_force(self, item: _Item) -> bool:
        """Still in the code set on the release date (the termination date is its last day)."""
        terminated = item.first.terminated
        return terminated is None or terminated >= self.on

    def result(self) -> HcpcsRelease:
        by_section: dict[str, list[CodeEntry]] = {}
        for code, item in self.procedures.items():
            if not self.in_force(item):
                continue
            first = item.first
            details: dict[str, Any] = {}
            if first.short:
                details["short_title"] = first.short
            if first.added is not None:
                details["added"] = first.added.isoformat()
            pending = (
                first.action in ("A", "R")
                and first.effective is not None
                and first.effective > self.on
            )
            if pending and first.effective is not None:
                details["effective"] = first.effective.isoformat()
            if first.terminated is not None:
                details["terminates"] = first.terminated.isoformat()
            section = code[0]
            by_section.setdefault(section, []).append(
                CodeEntry(
                    system="HCPCS",
                    code=code,
                    title=item.title,
                    kind="code",
                    billable=not pending,
                    parent=section,
                    chapter=section,
                    details=details,
                )
            )
        entries: list[CodeEntry] = []
        for section in sorted(by_section):
            entries.append(
                CodeEntry(
                    system="HCPCS",
                    code=section,
                    title=SECTION_TITLES.get(section, f"Level II codes beginning with {section}"),
                    kind="section",
                    billable=False,
                    parent=None,
                    chapter=section,
                )
            )
            entries.extend(by_section[section])
        modifiers = [
            {"modifier": code, "title": item.title}
            for code, item in self.modifiers.items()
            if self.in_force(item)
        ]
        if self.progress is not None:
            self.progress(self.count)
        return HcpcsRelease(release=self.release, entries=entries, modifiers=modifiers)


def parse_hcpcs(
    path: Path,
    *,
    release: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> HcpcsRelease:
    """Parse a whole HCPCS file into an ``HcpcsRelease``, or raise ``HcpcsError``.

    ``release`` (ISO date, the day the release takes effect) defaults to the quarter in
    the file name (``HCPC2026_APR_ANWEB.txt`` -> ``2026-04-01``); codes terminated
    before it are left out. ``progress(n)`` is called every 5,000 records and at the end.
    """
    path = Path(path)
    rel = release or _release_from_name(path.name)
    if rel is None:
        raise HcpcsError(
            f"{path}: cannot tell the release date from the file name (expected "
            "HCPC<year>_<month>_ANWEB...); pass release='YYYY-MM-DD' explicitly"
        )
    try:
        on = dt.date.fromisoformat(rel)
    except ValueError:
        raise HcpcsError(
            f"{path}: release {rel!r} is not a date; pass the day the release takes effect "
            "as 'YYYY-MM-DD' (terminated codes are judged against it)"
        ) from None
    return _Reader(path, rel, on, progress).run()


def import_hcpcs(
    app: CodeSets,
    path: Path,
    release: str | None = None,
    progress: Progress | None = None,
) -> ImportSummary:
    """Parse the whole file first, so that a broken file raises before anything is recorded.

    The modifiers are published as the ``HCPCS``/``modifiers`` reference once the codes
    are recorded (unchanged modifiers record nothing).
    """
    path = Path(path)
    report = progress or (lambda stage, done, total: None)
    parsed = parse_hcpcs(path, release=release, progress=lambda n: report("parse", n, 0))
    summary = app.import_release("HCPCS", parsed.release, path.name, parsed.entries, progress)
    if parsed.modifiers:
        app.publish_reference("HCPCS", "modifiers", parsed.release, parsed.modifiers)
    return summary
