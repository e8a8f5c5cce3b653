"""Reader for the AMA CPT descriptor files an operator receives under licence.

LICENSING: CPT codes are public, but their descriptors are copyrighted by the American
Medical Association and may be shown only under the operator's own AMA licence. medcode
ships no CPT descriptor, in code, data or tests (tests use invented text), and this
module never logs one: error messages quote at most the code field of a line, never
its descriptor. The descriptors reach the event store only from a file the operator
imports.

Files read (one code per line; blank lines are skipped):

* The plain-text descriptor files of the CPT data files: ``LONGULT.txt`` (long
  descriptors, upper/lower case, tab-delimited), ``MEDU.txt`` and ``SHORTU.txt``
  (medium and short descriptors): the code, then a tab or spaces, then the descriptor.
* The tab-delimited CPT Link style files with a ``Concept Id``, ``CPT Code`` and a
  descriptor column (``Long Descriptor``...); a header row naming the columns is used
  when present, otherwise the second and third columns are taken.

Some editions start with a header row or the AMA copyright notice; leading lines whose
first field holds no digit are skipped as such. Any later line must start with a code.
The fixed-field editions (``LONGULF.txt``: code and a 2-digit sequence in columns 1-7)
are not read; the error says to use the tab-delimited file instead.

Codes are five characters: Category I numeric (``99213``, by range into the six
sections below) or ending in ``A`` (immunization administration, Medicine); Category
II ending in ``F``; Category III ending in ``T``; Proprietary Laboratory Analyses
ending in ``U``; administrative MAAA codes ending in ``M``. Section titles are medcode's
own generic names, not AMA text.

The whole file is parsed before anything is returned: a broken file raises
``CptError`` naming the file and the line, and nothing is imported.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from services.lookup.application import CodeSets, ImportSummary, Progress
from services.lookup.domain import CodeEntry, ReleaseFileError

__all__ = ["SECTIONS", "CptError", "CptRelease", "import_cpt", "parse_cpt", "section_of"]

PROGRESS_EVERY = 5_000

# Sections in book order: code -> our own generic title.
SECTIONS: dict[str, str] = {
    "EM": "Evaluation and Management",
    "ANES": "Anesthesia",
    "SURG": "Surgery",
    "RAD": "Radiology",
    "PATH": "Pathology and Laboratory",
    "MED": "Medicine",
    "CAT2": "Category II (Performance Measurement)",
    "CAT3": "Category III (Emerging Technology)",
    "PLA": "Proprietary Laboratory Analyses",
    "MAAA": "Multianalyte Assays with Algorithmic Analyses (Administrative)",
}

# Category I by numeric range. The book's ranges (Anesthesia 00100-01999, Surgery
# 10004-69990, Radiology 70010-79999, Pathology and Laboratory 80047-89398, Medicine
# 90281-99199 and 99500-99607, E/M 99202-99499) are widened to the gaps between them, so
# that a code a new edition adds at a section's edge still finds its section.
_RANGES: tuple[tuple[int, int, str], ...] = (
    (0, 9999, "ANES"),
    (10000, 69999, "SURG"),
    (70000, 79999, "RAD"),
    (80000, 89999, "PATH"),
    (90000, 99199, "MED"),
    (99200, 99499, "EM"),
    (99500, 99999, "MED"),
)
_SUFFIX_SECTIONS = {"A": "MED", "F": "CAT2", "T": "CAT3", "U": "PLA", "M": "MAAA"}

_CODE_RE = re.compile(r"[0-9]{4}[0-9AFMTU]")
_FIXED_FIELD_RE = re.compile(r"[0-9]{4}[0-9A-Z][0-9]{2}")
_ADVICE = (
    "The CPT file is not usable; import a descriptor file (LONGULT.txt, MEDU.txt, "
    "SHORTU.txt or a tab-delimited CPT Link descriptor file) as the AMA delivered it, "
    "or fix that line."
)


class CptError(ReleaseFileError):
    """The CPT file cannot be read; the message says where, never quoting a descriptor."""


@dataclass(frozen=True)
class CptRelease:
    """A complete CPT release: sections, then their codes, in book order."""

    release: str
    entries: list[CodeEntry]


def section_of(code: str) -> str:
    """The section a valid CPT code belongs to (see ``SECTIONS``)."""
    suffix = code[-1]
    if suffix in _SUFFIX_SECTIONS:
        return _SUFFIX_SECTIONS[suffix]
    number = int(code)
    for low, high, section in _RANGES:
        if low <= number <= high:
            return section
    raise ValueError(code)  # pragma: no cover - the ranges cover 00000-99999


def _decode(raw: bytes) -> str:
    """AMA text files are ASCII or Windows-1252 (the copyright sign in the notice)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def _name(header: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", header.upper())


def _shown(text: str) -> str:
    """A code field fit for an error message: short enough never to carry a descriptor."""
    return repr(text[:8] + ("..." if len(text) > 8 else ""))


class _Reader:
    """One pass over one file; see ``parse_cpt``."""

    def __init__(self, path: Path, release: str, progress: Callable[[int], None] | None) -> None:
        self.path = path
        self.release = release
        self.progress = progress
        self.columns: tuple[int, int] | None = None  # (code, descriptor) from a header row
        self.lines: dict[str, int] = {}  # code -> line it is on
        self.by_section: dict[str, list[CodeEntry]] = {}

    def error(self, line: int, what: str) -> CptError:
        return CptError(f"{self.path}: line {line}: {what}. {_ADVICE}")

    def run(self) -> CptRelease:
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise CptError(
                f"{self.path}: cannot read the CPT file ({exc.strerror or exc}); check the path"
            ) from exc
        for number, raw in enumerate(data.splitlines(), 1):
            text = _decode(raw)
            if number == 1:
                text = text.lstrip("\ufeff")
            if text.strip():
                self.line(number, text)
        if not self.lines:
            raise CptError(f"{self.path}: no CPT codes in the file. {_ADVICE}")
        entries: list[CodeEntry] = []
        for section, title in SECTIONS.items():
            codes = self.by_section.get(section)
            if not codes:
                continue
            entries.append(
                CodeEntry(
                    system="CPT", code=section, title=title, kind="section", billable=False,
                    parent=None, chapter=section,
                )
            )
            entries.extend(codes)
        if self.progress is not None:
            self.progress(len(self.lines))
        return CptRelease(release=self.release, entries=entries)

    def fields(self, text: str) -> tuple[str, str, list[str] | None]:
        """(code field, descriptor, all tab-separated fields or None) of one line."""
        if "\t" in text:
            cells = [c.strip().strip('"').strip() for c in text.split("\t")]
            if self.columns is not None:
                code_col, desc_col = self.columns
            elif len(cells) >= 3 and not _CODE_RE.fullmatch(cells[1].upper()) and (
                _CODE_RE.fullmatch(cells[0].upper())
            ):
                code_col, desc_col = 0, 1  # code, descriptor, extra columns
            elif len(cells) >= 3:
                code_col, desc_col = 1, 2  # Concept Id, CPT Code, descriptor
            else:
                code_col, desc_col = 0, 1
            code = cells[code_col] if code_col < len(cells) else ""
            desc = cells[desc_col] if desc_col < len(cells) else ""
            return code, desc, cells
        parts = text.strip().split(None, 1)
        return parts[0], parts[1] if len(parts) > 1 else "", None

    def header(self, cells: list[str] | None) -> None:
        """Learn the code and descriptor columns from a header row, when it names them."""
        if not cells:
            return
        names = [_name(c) for c in cells]
        code_col = next(
            (i for i, n in enumerate(names) if n in ("CPTCODE", "CODE", "CPT", "HCPCSCODE")),
            None,
        )
        desc_col = next(
            (i for i, n in enumerate(names) if "DESCRIPTOR" in n or "DESCRIPTION" in n), None
        )
        if code_col is not None and desc_col is not None:
            self.columns = (code_col, desc_col)

    def line(self, number: int, text: str) -> None:
        code_field, descriptor, cells = self.fields(text)
        if not any(ch.isdigit() for ch in code_field):
            if not self.lines:  # a header row or the copyright notice before the codes
                self.header(cells)
                return
            raise self.error(number, "the line does not start with a CPT code")
        code = code_field.upper()
        if not _CODE_RE.fullmatch(code):
            if _FIXED_FIELD_RE.fullmatch(code):
                raise self.error(
                    number,
                    f"{_shown(code_field)} looks like a code and sequence number of the "
                    "fixed-field edition (LONGULF.txt), which is not read; use the "
                    "tab-delimited LONGULT.txt",
                )
            raise self.error(
                number,
                f"bad code {_shown(code_field)}: a CPT code is four digits then a digit "
                "or A, F, M, T or U",
            )
        if code in self.lines:
            raise self.error(number, f"code {code} is also on line {self.lines[code]}")
        title = " ".join(descriptor.split())
        if not title:
            raise self.error(number, f"code {code} has no descriptor")
        self.lines[code] = number
        section = section_of(code)
        self.by_section.setdefault(section, []).append(
            CodeEntry(
                system="CPT", code=code, title=title, kind="code", billable=True,
                parent=section, chapter=section,
            )
        )
        if self.progress is not None and len(self.lines) % PROGRESS_EVERY == 0:
            self.progress(len(self.lines))


def parse_cpt(
    path: Path,
    *,
    release: str,
    progress: Callable[[int], None] | None = None,
) -> CptRelease:
    """Parse a whole CPT descriptor file into a ``CptRelease``, or raise ``CptError``.

    ``release`` names the edition (e.g. ``2026``, or ``2026-04-01`` for a quarterly PLA
    update): the files do not say it. ``progress(n)`` is called every 5,000 codes and at
    the end.
    """
    path = Path(path)
    if not release or not release.strip():
        raise CptError(f"{path}: the CPT files do not name their edition; pass release=...")
    return _Reader(path, release.strip(), progress).run()


def import_cpt(
    app: CodeSets,
    path: Path,
    release: str,
    progress: Progress | None = None,
) -> ImportSummary:
    """Parse the whole file first, so that a broken file raises before anything is recorded."""
    path = Path(path)
    report = progress or (lambda stage, done, total: None)
    parsed = parse_cpt(path, release=release, progress=lambda n: report("parse", n, 0))
    return app.import_release("CPT", parsed.release, path.name, parsed.entries, progress)
