"""The lookup service's commands and queries over its event-sourced code sets."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError

from services.lookup.domain import (
    Code,
    CodeEntry,
    CodeSet,
    LookupFailure,
    Reference,
    ReleaseAlreadyImported,
    UndatedRelease,
    UnknownRelease,
    effective_date,
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


@lru_cache(maxsize=4096)
def _effective(release: str, system: str) -> date:
    return effective_date(release, system)


def effective_iso(release: str, system: str) -> str | None:
    try:
        return _effective(release, system).isoformat()
    except UndatedRelease:
        return None


def version_as_of(system: str, history: Sequence[dict[str, Any]], as_of: date) -> int | None:
    """The version of an entry in force on ``as_of``: that of the change with the latest
    effective date on or before it (the later one on a tie), or None if none had taken
    effect yet. Version i+1 is the one history[i] made.

    Choosing by date rather than by position keeps the answer right even when an older
    release was imported after a newer one.
    """
    best: tuple[date, int] | None = None
    for index, item in enumerate(history):
        effective = _effective(item["release"], system)
        if effective <= as_of and (best is None or effective >= best[0]):
            best = (effective, index + 1)
    return best[1] if best else None


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
        first = code_set is None
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
        # What the release changed, code by code, for "what changed between releases";
        # left empty for a system's first release, which adds everything.
        change_list: list[list[str]] = []
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
                if not first:
                    change_list.append([entry.code, "added"])
            elif current[entry.code] != content:  # revised, or deleted earlier and back
                code: Code = self.repository.get(Code.create_id(system, entry.code))
                code.revise(release=release, content=content)
                changed.append(code)
                revised += 1
                change_list.append([entry.code, "revised"])
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
                change_list.append([code_value, "deleted"])

        code_set.import_release(
            release=release, source=source, added=added, revised=revised, deleted=deleted,
            changes=change_list,
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

    def code(self, system: str, code: str, as_of: date | None = None) -> Code | None:
        """One entry as it stands now, or as it stood on ``as_of`` (a date of service).

        None when it does not exist (or was deleted), or did not exist yet or no longer
        existed on that date. Raises UndatedRelease when a release of the entry has no
        effective date to compare ``as_of`` with.
        """
        code_id = Code.create_id(system, code)
        try:
            found: Code = self.repository.get(code_id)
        except AggregateNotFoundError:
            return None
        if as_of is not None:
            version = version_as_of(system, found.history, as_of)
            if version is None:
                return None
            if version != found.version:
                found = self.repository.get(code_id, version=version)
        return None if found.deleted else found

    def history(self, system: str, code: str) -> list[dict[str, Any]]:
        """Every change of an entry, deleted or not: [{release, change, effective}]."""
        try:
            found: Code = self.repository.get(Code.create_id(system, code))
        except AggregateNotFoundError:
            return []
        return [{**h, "effective": effective_iso(h["release"], system)} for h in found.history]

    def releases(self, system: str) -> list[dict[str, Any]]:
        """Imported releases in import order, each with its ISO effective date (or None)."""
        code_set = self._code_set(system)
        if code_set is None:
            return []
        return [{**r, "effective": effective_iso(r["release"], system)}
                for r in code_set.releases]

    def changes(
        self,
        system: str,
        since: str | None = None,
        until: str | None = None,
        *,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """What the releases after ``since`` up to and including ``until`` changed.

        One item per change a release recorded, in release order, then in the order the
        release lists its entries: {code, change (added|revised|deleted), release,
        effective, title (as that release left it; the last known one for a deletion),
        previous_title (for a revision that changed the title, else None)}.
        ``until`` defaults to the latest release and ``since`` to the one before
        ``until``. The first release imported is the baseline: it lists no changes.
        Only the ``offset``/``limit`` window is read from the store (one read per code).
        """
        window = self._change_list(system, since, until)
        window = window[offset:] if limit is None else window[offset:offset + limit]
        items = []
        for release, code, change in window:
            items.append(self._change_item(system, release, code, change))
        return items

    def count_changes(self, system: str, since: str | None = None, until: str | None = None
                      ) -> int:
        return len(self._change_list(system, since, until))

    def _change_list(
        self, system: str, since: str | None, until: str | None
    ) -> list[tuple[str, str, str]]:
        code_set = self._code_set(system)
        names = [r["release"] for r in code_set.releases] if code_set else []

        def position(release: str) -> int:
            if release not in names:
                known = ", ".join(names) or "none yet"
                raise UnknownRelease(
                    f"{system} has no release {release!r} (imported: {known})"
                )
            return names.index(release)

        if not names:
            if since is not None or until is not None:
                position(since or until or "")
            return []
        end = position(until) if until is not None else len(names) - 1
        start = position(since) + 1 if since is not None else max(end, 1)
        if since is not None and start > end + 1:
            raise LookupFailure(f"release {since!r} comes after {until!r}; swap them")
        found: list[tuple[str, str, str]] = []
        assert code_set is not None
        for index in range(max(start, 1), end + 1):  # the first release is the baseline
            release = names[index]
            recorded = code_set.changes.get(release)
            pairs = recorded if recorded is not None else self._logged_changes(system, release)
            found.extend((release, code, change) for code, change in pairs)
        return found

    def _change_item(self, system: str, release: str, code: str, change: str) -> dict[str, Any]:
        """One change with its titles, from the code's own events (one read)."""
        title: str | None = None
        previous: str | None = None
        before: str | None = None
        for stored in self.events.get(Code.create_id(system, code)):
            event: Any = stored
            if isinstance(event, (Code.Added, Code.Revised)):
                content_title = str(event.content["title"])
            else:
                content_title = before or ""
            if event.release == release:
                title, previous = content_title, before
                break
            before = content_title
        item = {"code": code, "change": change, "release": release,
                "effective": effective_iso(release, system), "title": title or "",
                "previous_title": None}
        if change == "revised" and previous is not None and previous != title:
            item["previous_title"] = previous
        return item

    def _logged_changes(self, system: str, release: str) -> list[list[str]]:
        """A release's changes read back from the log, for releases imported before their
        change lists were recorded (a whole-log scan, remembered: a release never changes)."""
        remembered: dict[tuple[str, str], list[list[str]]] = self.__dict__.setdefault(
            "_remembered_changes", {}
        )
        key = (system, release)
        if key not in remembered:
            kinds: dict[type, str] = {
                Code.Added: "added", Code.Revised: "revised", Code.Deleted: "deleted"
            }
            remembered[key] = [
                [event.code, kinds[type(event)]]
                for event in self._code_events(system)
                if event.release == release
            ]
        return remembered[key]

    def _code_set(self, system: str) -> CodeSet | None:
        try:
            found: CodeSet = self.repository.get(CodeSet.create_id(system))
        except AggregateNotFoundError:
            return None
        return found

    def _code_events(self, system: str, report: Progress | None = None) -> Iterator[Any]:
        """Every Added/Revised/Deleted event of one system, in log order."""
        topics = [
            f"{Code.__module__}:{Code.__qualname__}.{name}"
            for name in ("Added", "Revised", "Deleted")
        ]
        start = 0
        read = 0
        while page := self.recorder.select_notifications(
            start, 5000, topics=topics, inclusive_of_start=False
        ):
            for notification in page:
                event: Any = self.mapper.to_domain_event(notification)
                if event.system == system:
                    yield event
            start = page[-1].id
            read += len(page)
            if report:
                report("read", read, 0)

    def _current_contents(self, system: str, report: Progress) -> dict[str, dict[str, Any] | None]:
        """Fold the log into each code's current content (None once deleted)."""
        contents: dict[str, dict[str, Any] | None] = {}
        for event in self._code_events(system, report):
            deleted = isinstance(event, Code.Deleted)
            contents[event.code] = None if deleted else event.content
        return contents
