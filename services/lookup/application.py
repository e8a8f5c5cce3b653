"""The lookup service's commands and queries over its event-sourced code sets."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError

from services.lookup.domain import (
    Code,
    CodeEntry,
    CodeSet,
    Reference,
    ReleaseAlreadyImported,
)

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass(frozen=True)
class ImportSummary:
    system: str
    release: str
    added: int
    revised: int
    deleted: int
    unchanged: int


class CodeSets(Application[UUID]):
    """Code systems, their releases and every entry in them."""

    name = "lookup"

    def import_release(
        self,
        system: str,
        release: str,
        source: str,
        entries: Sequence[CodeEntry],
        progress: Progress | None = None,
    ) -> ImportSummary:
        """Record a release as the differences from what is held now, in one transaction.

        Either every event of the release is recorded or none is, so a failed or
        concurrent import never leaves a partial release behind.
        """
        report = progress or (lambda stage, done, total: None)
        code_set = self._code_set(system)
        if code_set is None:
            code_set = CodeSet(system=system)
            current: dict[str, dict[str, Any] | None] = {}
        else:
            if code_set.has_release(release):
                raise ReleaseAlreadyImported(
                    f"{system} release {release} is already imported; nothing to do"
                )
            current = self._current_contents(system, report)

        children: dict[str, list[str]] = {}
        for entry in entries:
            if entry.parent:
                children.setdefault(entry.parent, []).append(entry.code)

        changed: list[Code] = []
        added = revised = unchanged = 0
        seen: set[str] = set()
        total = len(entries)
        for done, entry in enumerate(entries, 1):
            seen.add(entry.code)
            content = entry.content()
            if entry.code in children:  # the hierarchy is part of what a release says
                content["children"] = children[entry.code]
            if entry.code not in current:
                changed.append(
                    Code(system=system, code=entry.code, release=release, content=content)
                )
                added += 1
            elif current[entry.code] != content:  # revised, or deleted earlier and back
                code: Code = self.repository.get(Code.create_id(system, entry.code))
                code.revise(release=release, content=content)
                changed.append(code)
                revised += 1
            else:
                unchanged += 1
            if done % 5000 == 0 or done == total:
                report("compare", done, total)

        deleted = 0
        for code_value, before in current.items():
            if before is not None and code_value not in seen:
                code = self.repository.get(Code.create_id(system, code_value))
                code.delete(release=release)
                changed.append(code)
                deleted += 1

        code_set.import_release(
            release=release, source=source, added=added, revised=revised, deleted=deleted
        )
        report("record", 0, len(changed) + 1)
        try:
            self.save(code_set, *changed)
        except IntegrityError:
            raise ReleaseAlreadyImported(
                f"{system} release {release} was imported concurrently; nothing recorded"
            ) from None
        report("record", len(changed) + 1, len(changed) + 1)
        return ImportSummary(system, release, added, revised, deleted, unchanged)

    def publish_reference(
        self, system: str, name: str, release: str, items: list[dict[str, Any]]
    ) -> bool:
        """Record a reference text (guidelines, index...); False when it is unchanged."""
        try:
            reference: Reference = self.repository.get(Reference.create_id(system, name))
        except AggregateNotFoundError:
            self.save(Reference(system=system, name=name, release=release, items=items))
            return True
        if reference.items == items:
            return False
        reference.revise(release=release, items=items)
        self.save(reference)
        return True

    def reference(self, system: str, name: str) -> Reference | None:
        try:
            found: Reference = self.repository.get(Reference.create_id(system, name))
        except AggregateNotFoundError:
            return None
        return found

    def code(self, system: str, code: str) -> Code | None:
        """The current state of one entry, or None when it does not exist (or was deleted)."""
        try:
            found: Code = self.repository.get(Code.create_id(system, code))
        except AggregateNotFoundError:
            return None
        return None if found.deleted else found

    def releases(self, system: str) -> list[dict[str, Any]]:
        code_set = self._code_set(system)
        return list(code_set.releases) if code_set else []

    def _code_set(self, system: str) -> CodeSet | None:
        try:
            found: CodeSet = self.repository.get(CodeSet.create_id(system))
        except AggregateNotFoundError:
            return None
        return found

    def _current_contents(self, system: str, report: Progress) -> dict[str, dict[str, Any] | None]:
        """Fold the log into each code's current content (None once deleted)."""
        topics = [
            f"{Code.__module__}:{Code.__qualname__}.{name}"
            for name in ("Added", "Revised", "Deleted")
        ]
        contents: dict[str, dict[str, Any] | None] = {}
        start = 0
        while page := self.recorder.select_notifications(
            start, 5000, topics=topics, inclusive_of_start=False
        ):
            for notification in page:
                event: Any = self.mapper.to_domain_event(notification)
                if event.system == system:
                    deleted = isinstance(event, Code.Deleted)
                    contents[event.code] = None if deleted else event.content
            start = page[-1].id
            report("read", len(contents), 0)
        return contents
