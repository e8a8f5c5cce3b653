"""The lookup domain: code sets, their releases and their entries. No I/O here."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

NAMESPACE = UUID("6f1d7c52-3a0e-4a57-9a43-2b0f5d3c9e11")

SYSTEMS = ("ICD10CM", "ICD10PCS", "HCPCS", "CPT")


class LookupFailure(Exception):
    """Base for expected lookup failures (typed for the API layer)."""


# English month names, as release file names spell them ("April-1-2026", "HCPC2026_JAN").
MONTHS = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)  # fmt: skip


class ReleaseFileError(ValueError):
    """A release file cannot be read; each importer's message names the file, the
    place and what to do."""


class ReleaseAlreadyImported(LookupFailure):
    pass


class UnknownCodeSystem(LookupFailure):
    pass


class UnknownRelease(LookupFailure):
    pass


class UndatedRelease(LookupFailure, ValueError):
    """A release identifier that says no date, so no date of service can be matched to it."""


_ISO_DAY = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_YEAR = re.compile(r"\d{4}")


def effective_date(release: str, system: str | None = None) -> date:
    """The day a release takes effect, from its identifier.

    ``"2026-04-01"`` is that day. ``"2025"`` is a fiscal year (ICD-10-PCS: FY2025) and
    takes effect on October 1 of the year before (2024-10-01), except for CPT, whose
    yearly edition takes effect on January 1 of its year. Anything else raises
    ``UndatedRelease`` (a ValueError).
    """
    text = release.strip()
    try:
        if _ISO_DAY.fullmatch(text):
            return date.fromisoformat(text)
        if _YEAR.fullmatch(text):
            year = int(text)
            return date(year, 1, 1) if system == "CPT" else date(year - 1, 10, 1)
    except ValueError:
        pass
    raise UndatedRelease(
        f"release {release!r} has no effective date: expected YYYY-MM-DD (the day it "
        "takes effect) or YYYY (a fiscal year)"
    )


@dataclass(frozen=True)
class CodeEntry:
    """One entry of a code-set release as an importer reads it."""

    system: str
    code: str
    title: str
    kind: str  # see KINDS
    billable: bool
    parent: str | None = None
    chapter: str | None = None  # the top-level group: ICD-10-CM chapter, PCS section...
    notes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    seven_character: tuple[tuple[str, str], ...] = ()
    # System-specific facts (PCS axis meanings, GEMs, index entries...): JSON values.
    details: dict[str, Any] = field(default_factory=dict, hash=False)

    def content(self) -> dict[str, Any]:
        """What a release can change about an entry: compared to detect revisions."""
        content = {
            "title": self.title,
            "kind": self.kind,
            "billable": self.billable,
            "parent": self.parent,
            "chapter": self.chapter,
            "notes": {k: list(v) for k, v in sorted(self.notes.items())},
            "seven_character": [list(p) for p in self.seven_character],
        }
        if self.details:
            content["details"] = self.details
        return content


# Levels of each code system's hierarchy, from the top down.
KINDS = {
    "ICD10CM": ("chapter", "block", "category", "code"),
    "ICD10PCS": ("section", "body_system", "table", "code"),
    "HCPCS": ("section", "code"),
    "CPT": ("section", "code"),
}


class Code(Aggregate):
    """An entry of a code set (chapter, block, category or code) across releases."""

    class Added(Aggregate.Created):
        system: str
        code: str
        release: str
        content: dict[str, Any]

    class Revised(Aggregate.Event):
        system: str
        code: str
        release: str
        content: dict[str, Any]

    class Deleted(Aggregate.Event):
        system: str
        code: str
        release: str

    @staticmethod
    def create_id(system: str, code: str) -> UUID:
        return uuid5(NAMESPACE, f"code:{system}:{code}")

    @event(Added)
    def __init__(
        self, system: str, code: str, release: str, content: dict[str, Any]
    ) -> None:
        self.system = system
        self.code = code
        self.content = content
        self.deleted = False
        self.history: list[dict[str, Any]] = [{"release": release, "change": "added"}]

    def revise(self, release: str, content: dict[str, Any]) -> None:
        self._revised(system=self.system, code=self.code, release=release, content=content)

    def delete(self, release: str) -> None:
        self._deleted(system=self.system, code=self.code, release=release)

    # The events repeat the code's identity so that each one is self-describing on the
    # bus and in exports, without a consumer having to remember earlier events.
    @event(Revised)
    def _revised(self, system: str, code: str, release: str, content: dict[str, Any]) -> None:
        self.content = content
        self.deleted = False
        self.history.append({"release": release, "change": "revised"})

    @event(Deleted)
    def _deleted(self, system: str, code: str, release: str) -> None:
        self.deleted = True
        self.history.append({"release": release, "change": "deleted"})

    @property
    def title(self) -> str:
        return str(self.content["title"])

    @property
    def billable(self) -> bool:
        return bool(self.content["billable"])


class CodeSet(Aggregate):
    """A code system as medcode holds it: which releases have been imported, in order.

    Recording each import here makes a second import of the same release a visible
    conflict (optimistic concurrency) rather than a silent duplicate.
    """

    class Created(Aggregate.Created):
        system: str

    class ReleaseImported(Aggregate.Event):
        system: str
        release: str
        source: str
        added: int
        revised: int
        deleted: int
        # [code, "added" | "revised" | "deleted"] in the order recorded; empty for the
        # first release (everything added). None in events recorded before it existed.
        changes: list[list[str]] | None = None

    @staticmethod
    def create_id(system: str) -> UUID:
        return uuid5(NAMESPACE, f"codeset:{system}")

    @event(Created)
    def __init__(self, system: str) -> None:
        self.system = system
        self.releases: list[dict[str, Any]] = []
        # Each release's change list (see ReleaseImported.changes), by release.
        self.changes: dict[str, list[list[str]] | None] = {}

    def import_release(
        self, release: str, source: str, added: int, revised: int, deleted: int,
        changes: list[list[str]],
    ) -> None:
        self._release_imported(
            system=self.system, release=release, source=source, added=added,
            revised=revised, deleted=deleted, changes=changes,
        )

    @event(ReleaseImported)
    def _release_imported(
        self, system: str, release: str, source: str, added: int, revised: int, deleted: int,
        changes: list[list[str]] | None = None,
    ) -> None:
        self.releases.append(
            {"release": release, "source": source, "added": added, "revised": revised,
             "deleted": deleted}
        )
        self.changes[release] = changes

    def has_release(self, release: str) -> bool:
        return any(r["release"] == release for r in self.releases)


class Reference(Aggregate):
    """A reference text published with a code set: its guidelines, index or crosswalk.

    Held whole (a few hundred kB at most) because coders read it whole, and a release
    that changes any item records one revision with the new items.
    """

    class Published(Aggregate.Created):
        system: str
        name: str
        release: str
        items: list[dict[str, Any]]

    class Revised(Aggregate.Event):
        system: str
        name: str
        release: str
        items: list[dict[str, Any]]

    @staticmethod
    def create_id(system: str, name: str) -> UUID:
        return uuid5(NAMESPACE, f"reference:{system}:{name}")

    @event(Published)
    def __init__(self, system: str, name: str, release: str, items: list[dict[str, Any]]) -> None:
        self.system = system
        self.name = name
        self.release = release
        self.items = items

    def revise(self, release: str, items: list[dict[str, Any]]) -> None:
        self._revised(system=self.system, name=self.name, release=release, items=items)

    @event(Revised)
    def _revised(self, system: str, name: str, release: str, items: list[dict[str, Any]]) -> None:
        self.release = release
        self.items = items


_SPACES = re.compile(r"[\s.\-_]+")
_BLOCK = re.compile(r"[A-Z][0-9]{2}-[A-Z][0-9][0-9A-Z]")


def normalise_code(system: str, raw: str) -> str | None:
    """The canonical display form of a code typed in any common spelling.

    ``"i219"``, ``" I21.9 "`` and ``"I21-9"`` all become ``"I21.9"``; returns None when
    the text cannot be a code of that system.
    """
    text = raw.strip().upper()
    if system == "ICD10CM" and _BLOCK.fullmatch(text):
        return text
    compact = _SPACES.sub("", text)
    if not compact or len(compact) > 8:
        return None
    if system == "ICD10CM":
        if not re.fullmatch(r"[A-Z][0-9][0-9A-Z]{1,5}", compact):
            return None
        return compact if len(compact) == 3 else f"{compact[:3]}.{compact[3:]}"
    if system == "ICD10PCS":
        return compact if re.fullmatch(r"[0-9A-HJ-NP-Z]{7}", compact) else None
    if system == "HCPCS":
        return compact if re.fullmatch(r"[A-Z][0-9]{4}", compact) else None
    if system == "CPT":
        return compact if re.fullmatch(r"[0-9]{4}[0-9AFMTU]", compact) else None
    raise UnknownCodeSystem(system)
