"""Streaming reader for the official CDC ICD-10-CM tabular XML.

The tabular list is ~10 MB and ~245k lines; it is read with ``XMLPullParser`` one
line at a time so that (a) only one category subtree is held in memory at a time and
(b) every problem can be reported with the line it is on. The result is built whole
or not at all: the importer must never see half a release.

7th-character codes (``S72.001A``) are not in the XML; they are generated here from
the ``<sevenChrDef>`` tables exactly as the book prescribes (placeholder ``X`` up to
the 6th character, then the extension character).

Longer than 400 lines on purpose: one streaming parser of one file format, read
top-down; its state machine is one class.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from services.lookup.domain import MONTHS, ReleaseFileError

__all__ = [
    "Tabular",
    "TabularEntry",
    "TabularError",
    "default_tabular_path",
    "parse_tabular",
]

ROOT_TAG = "ICD10CM.tabular"
PROGRESS_EVERY = 5_000

# XML note-container tag -> key in TabularEntry.notes (book order of the keys).
NOTE_KINDS: dict[str, str] = {
    "inclusionTerm": "inclusion_terms",
    "includes": "includes",
    "excludes1": "excludes1",
    "excludes2": "excludes2",
    "codeFirst": "code_first",
    "useAdditionalCode": "use_additional_code",
    "codeAlso": "code_also",
    "notes": "notes",
    "sevenChrNote": "seven_character_note",
}

_RELEASE_RE = re.compile(r"([A-Za-z]+)-(\d{1,2})-(\d{4})")
_TABULAR_GLOB = "icd10c-tabular-*.xml"


class TabularError(ReleaseFileError):
    """The tabular file cannot be read; the message says where and what to do."""


@dataclass(frozen=True)
class TabularEntry:
    """One line of the tabular list: chapter, block, category, code or generated 7th-char code."""

    code: str
    title: str
    kind: str  # "chapter" | "block" | "category" | "code"
    parent: str | None
    chapter: str
    billable: bool
    # Excluded from hashing (a dict is unhashable) so entries stay usable in sets.
    notes: dict[str, tuple[str, ...]] = field(default_factory=dict, hash=False)
    seven_character: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Tabular:
    """A complete tabular release, entries in the book's (pre-)order."""

    version: str
    release: str
    entries: list[TabularEntry]


def default_tabular_path() -> Path:
    """The newest tabular XML shipped in the ``simple-icd-10-cm`` wheel.

    Found through the package's import spec rather than a hard-coded site-packages path,
    so it works in any venv. Deliberately not ``importlib.resources.files(...)``: that
    imports ``simple_icd_10_cm``, whose ``__init__`` parses the whole XML into its own
    tree (~2 s and >100 MB) just to tell us where the file is.
    """
    spec = importlib.util.find_spec("simple_icd_10_cm")
    locations = list(spec.submodule_search_locations or []) if spec else []
    data_dirs = [Path(loc) / "data" for loc in locations]
    candidates = [p for d in data_dirs if d.is_dir() for p in d.glob(_TABULAR_GLOB)]
    if not candidates:
        raise TabularError(
            f"no {_TABULAR_GLOB} found in the simple_icd_10_cm package data "
            f"({', '.join(map(str, data_dirs)) or 'package not installed'}); "
            "install or reinstall 'simple-icd-10-cm'"
        )

    def release_key(p: Path) -> tuple[str, str]:
        return (_release_from_name(p.name) or "", p.name)

    return max(candidates, key=release_key)


def _release_from_name(name: str) -> str | None:
    """``icd10c-tabular-April-1-2026.xml`` -> ``2026-04-01`` (None if the name has no date)."""
    for m in _RELEASE_RE.finditer(name):
        month, day, year = m.group(1).lower(), int(m.group(2)), int(m.group(3))
        if month in MONTHS:
            try:
                return dt.date(year, MONTHS.index(month) + 1, day).isoformat()
            except ValueError:
                return None
    return None


def _clean(text: str | None) -> str:
    """Strip and collapse whitespace: the XML indents and occasionally tab-prefixes text."""
    return " ".join(text.split()) if text else ""


def _seventh_character_applies(code: str, char: str) -> bool:
    """Whether ``char`` may be appended to ``code``; the XML states one exception only in prose.

    Category S06 carries the note "7th characters D and S do not apply to codes in
    category S06 with 6th character 7 - death due to brain injury prior to regaining
    consciousness, or 8 - death due to other cause prior to regaining consciousness."
    The <sevenChrDef> itself still lists A, D and S, so a naive expansion yields 76
    codes (S06.0X7D, S06.0X7S, ...) that are not valid: they are absent from the CMS
    code files and from the code list shipped beside the XML. The rule is encoded here.
    """
    bare = code.replace(".", "")
    return not (bare.startswith("S06") and bare[5:6] in ("7", "8") and char in ("D", "S"))


def seventh_character_code(code: str, char: str) -> str:
    """``S72.001`` + ``A`` -> ``S72.001A``; ``T07`` + ``A`` -> ``T07.XXXA``.

    The code is padded with the placeholder ``X`` to six characters (dot not counted)
    before the extension is appended, as the book's conventions require.
    """
    bare = code.replace(".", "")
    full = bare.ljust(6, "X") + char
    return f"{full[:3]}.{full[3:]}"


class _Parser:
    """State for one pass over one file; see ``parse_tabular``."""

    def __init__(self, path: Path, release: str, progress: Callable[[int], None] | None) -> None:
        self.path = path
        self.release = release
        self.progress = progress
        self.next_progress = PROGRESS_EVERY
        # Chapters and blocks get a slot when they open (to keep pre-order) and are
        # filled when they close (their notes are complete only then).
        self.slots: list[TabularEntry | None] = []
        self.version: str | None = None
        self.line = 0
        self.lines: dict[ET.Element, int] = {}  # start line of elements still held
        self.stack: list[ET.Element] = []
        self.chapter: str | None = None
        self.chapter_slot = -1
        self.block: str | None = None
        self.block_slot = -1
        self.seen_chapters = 0
        self.diag_codes: set[str] = set()

    # -- errors -------------------------------------------------------------------

    def error(self, what: str, line: int | None = None, column: int | None = None) -> TabularError:
        where = f"line {line if line is not None else self.line}"
        if column is not None:
            where += f", column {column}"
        return TabularError(
            f"{self.path}: {where}: {what}. The ICD-10-CM tabular file is not usable; "
            "restore the official CDC file (reinstall 'simple-icd-10-cm') or fix it at that place."
        )

    # -- driving ------------------------------------------------------------------

    def run(self) -> Tabular:
        parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start", "end"))
        try:
            with self.path.open("rb") as fh:
                for raw in fh:
                    self.line += 1
                    parser.feed(raw)
                    self.drain(parser)
                parser.close()
                self.drain(parser)
        except ET.ParseError as exc:
            line, col = exc.position
            reason = re.sub(r":? line \d+, column \d+$", "", str(exc))
            raise self.error(
                f"malformed or truncated XML ({reason})", line=line, column=col + 1
            ) from None
        except OSError as exc:
            raise TabularError(
                f"{self.path}: cannot read the ICD-10-CM tabular file ({exc.strerror or exc}); "
                "check the path or reinstall 'simple-icd-10-cm'"
            ) from exc
        if self.version is None:
            raise self.error("no <version> element in <ICD10CM.tabular>", line=1)
        if self.seen_chapters == 0:
            raise self.error("no <chapter> elements: this is not an ICD-10-CM tabular list")
        entries = [e for e in self.slots if e is not None]
        if len(entries) != len(self.slots):  # pragma: no cover - every open slot is closed
            raise self.error("an unterminated chapter or block")
        if self.progress is not None:
            self.progress(len(entries))
        return Tabular(version=self.version, release=self.release, entries=entries)

    def drain(self, parser: ET.XMLPullParser[ET.Element]) -> None:
        """Handle the events the last feed completed (only start/end were asked for)."""
        for item in parser.read_events():
            event, elem = item[0], item[-1]
            if not isinstance(elem, ET.Element):  # pragma: no cover - ns events not requested
                continue
            if event == "start":
                self.start(elem)
            else:
                self.end(elem)

    def add(self, entry: TabularEntry | None) -> int:
        self.slots.append(entry)
        if self.progress is not None and len(self.slots) >= self.next_progress:
            self.progress(len(self.slots))
            self.next_progress = (len(self.slots) // PROGRESS_EVERY + 1) * PROGRESS_EVERY
        return len(self.slots) - 1

    def parent_tag(self) -> str | None:
        return self.stack[-2].tag if len(self.stack) >= 2 else None

    def start(self, elem: ET.Element) -> None:
        self.stack.append(elem)
        parent = self.parent_tag()
        if parent is None:
            if elem.tag != ROOT_TAG:
                raise self.error(f"root element is <{elem.tag}>, expected <{ROOT_TAG}>")
            return
        if elem.tag == "chapter" and parent == ROOT_TAG:
            self.lines[elem] = self.line
            self.seen_chapters += 1
            self.chapter = None
            self.chapter_slot = self.add(None)
        elif elem.tag == "section" and parent == "chapter":
            self.lines[elem] = self.line
            if self.chapter is None:
                raise self.error("<section> before the chapter's <name>")
            block = _clean(elem.get("id"))
            if not block:
                raise self.error("<section> without an id attribute")
            self.block = block
            self.block_slot = self.add(None)
        elif elem.tag == "diag":
            self.lines[elem] = self.line
            if parent not in ("section", "diag"):
                raise self.error(f"<diag> inside <{parent}>; diags belong in a <section>")

    def end(self, elem: ET.Element) -> None:
        self.stack.pop()
        parent = self.stack[-1].tag if self.stack else None
        tag = elem.tag
        if tag == "version" and parent == ROOT_TAG:
            self.version = _clean(elem.text)
        elif tag == "introduction" and parent == ROOT_TAG:
            elem.clear()
        elif tag == "name" and parent == "chapter":
            self.chapter = _clean(elem.text)
            if not self.chapter:
                raise self.error("empty chapter <name>")
        elif tag == "diag" and parent == "section":
            assert self.chapter is not None and self.block is not None
            self.category(elem)
            self.stack[-1].remove(elem)  # keep memory flat: the category is done
        elif tag == "section" and parent == "chapter":
            assert self.chapter is not None and self.block is not None
            self.slots[self.block_slot] = TabularEntry(
                code=self.block,
                title=self.desc(elem, self.block),
                kind="block",
                parent=self.chapter,
                chapter=self.chapter,
                billable=False,
                notes=self.notes(elem),
            )
            self.stack[-1].remove(elem)
            self.lines.pop(elem, None)
        elif tag == "chapter" and parent == ROOT_TAG:
            if self.chapter is None:
                raise self.error("<chapter> without <name>", line=self.lines.get(elem))
            self.slots[self.chapter_slot] = TabularEntry(
                code=self.chapter,
                title=self.desc(elem, f"chapter {self.chapter}"),
                kind="chapter",
                parent=None,
                chapter=self.chapter,
                billable=False,
                notes=self.notes(elem),
            )
            self.stack[-1].remove(elem)
            self.lines.pop(elem, None)

    # -- entries ------------------------------------------------------------------

    def desc(self, elem: ET.Element, what: str) -> str:
        title = _clean(elem.findtext("desc"))
        if not title:
            raise self.error(f"{what} has no <desc>", line=self.lines.get(elem))
        return title

    def notes(self, elem: ET.Element) -> dict[str, tuple[str, ...]]:
        found: dict[str, list[str]] = {}
        for child in elem:
            key = NOTE_KINDS.get(child.tag)
            if key is None:
                continue
            texts = [t for n in child.iter("note") if (t := _clean("".join(n.itertext())))]
            if texts:
                found.setdefault(key, []).extend(texts)
        return {k: tuple(v) for k, v in found.items()}

    def seven_chr_def(
        self, elem: ET.Element, code: str, notes: dict[str, tuple[str, ...]]
    ) -> tuple[tuple[str, str], ...]:
        definition = elem.find("sevenChrDef")
        if definition is None:
            return ()
        chars: list[tuple[str, str]] = []
        stray: list[str] = []
        for child in definition:
            if child.tag == "extension":
                char = (child.get("char") or "").strip()
                if len(char) != 1:
                    raise self.error(
                        f"{code}: <extension> needs a one-character 'char' attribute",
                        line=self.lines.get(elem),
                    )
                chars.append((char, _clean("".join(child.itertext()))))
            elif child.tag == "note" and (text := _clean("".join(child.itertext()))):
                stray.append(text)
        if not chars:
            raise self.error(f"{code}: empty <sevenChrDef>", line=self.lines.get(elem))
        if stray:
            # Data oddity: a few tables carry loose <note>s between the extensions
            # (e.g. S72's "initial encounter for open fracture NOS" under B, and W08's
            # "Fall from stool", which reads like a misplaced inclusion term). They are
            # book text printed with the 7th-character table, so they are kept with the
            # table's own note rather than dropped or glued onto a meaning.
            notes["seven_character_note"] = notes.get("seven_character_note", ()) + tuple(stray)
        return tuple(chars)

    def category(self, elem: ET.Element) -> None:
        """Emit one category subtree in pre-order, generating 7th-character codes."""
        assert self.chapter is not None and self.block is not None
        chapter = self.chapter

        def walk(
            node: ET.Element, parent: str, kind: str, active: tuple[tuple[str, str], ...]
        ) -> None:
            line = self.lines.pop(node, None)
            code = _clean(node.findtext("name"))
            if not code:
                raise self.error("<diag> without <name>", line=line)
            if code in self.diag_codes:
                raise self.error(f"duplicate code {code}", line=line)
            self.diag_codes.add(code)
            title = _clean(node.findtext("desc"))
            if not title:
                raise self.error(f"{code} has no <desc>", line=line)
            notes = self.notes(node)
            own = self.seven_chr_def(node, code, notes)
            active = own or active
            children = node.findall("diag")
            self.add(
                TabularEntry(
                    code=code,
                    title=title,
                    kind=kind,
                    parent=parent,
                    chapter=chapter,
                    billable=not children and not active,
                    notes=notes,
                    seven_character=own,
                )
            )
            for child in children:
                walk(child, code, "code", active)
            if children or not active:
                return
            if len(code.replace(".", "")) >= 7:
                raise self.error(
                    f"{code} already has 7 characters but a 7th is required", line=line
                )
            for char, meaning in active:
                if not _seventh_character_applies(code, char):
                    continue
                generated = seventh_character_code(code, char)
                if generated in self.diag_codes:
                    raise self.error(f"generated code {generated} is also in the file", line=line)
                self.diag_codes.add(generated)
                self.add(
                    TabularEntry(
                        code=generated,
                        title=f"{title}, {meaning}",
                        kind="code",
                        parent=code,
                        chapter=chapter,
                        billable=True,
                    )
                )

        walk(elem, self.block, "category", ())


def parse_tabular(
    path: Path,
    *,
    release: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> Tabular:
    """Parse a whole tabular XML file into a ``Tabular``, or raise ``TabularError``.

    ``release`` (ISO date) defaults to the date in the file name
    (``...-April-1-2026.xml`` -> ``2026-04-01``). ``progress(n)`` is called about every
    5,000 entries and once at the end with the total.
    """
    path = Path(path)
    rel = release or _release_from_name(path.name)
    if rel is None:
        raise TabularError(
            f"{path}: cannot tell the release date from the file name; "
            "pass release='YYYY-MM-DD' explicitly"
        )
    return _Parser(path, rel, progress).run()
