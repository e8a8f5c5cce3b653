"""The newest public position of a log, read again only when the log changed."""

from __future__ import annotations

from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from services.shared.publishing import EventCatalogue


class Note(Aggregate):
    @event("Written")
    def __init__(self, text: str) -> None:
        self.text = text

    @event("Edited")  # private: not in the catalogue
    def edit(self, text: str) -> None:
        self.text = text

    @event("Signed")
    def sign(self) -> None:
        self.signed = True


CATALOGUE = EventCatalogue(source="notes")
CATALOGUE.publish(Note.Written, "NoteWritten", 1)(lambda e: {})
CATALOGUE.publish(Note.Signed, "NoteSigned", 1)(lambda e: {})


class Notes(Application[Any]):
    def write(self, text: str) -> Note:
        note = Note(text)
        self.save(note)
        return note


def test_the_newest_public_position_is_read_again_only_when_the_log_changed() -> None:
    app = Notes()
    reads: list[int] = []
    select = app.recorder.select_notifications

    def counted(*args: Any, **kwargs: Any) -> Any:
        reads.append(1)
        return select(*args, **kwargs)

    app.recorder.select_notifications = counted  # type: ignore[method-assign]
    assert CATALOGUE.last_position(app) == 0
    note = app.write("first")
    assert CATALOGUE.last_position(app) == 1
    note.edit("second")
    app.save(note)  # position 2, private
    assert CATALOGUE.last_position(app, page=1) == 1
    before = len(reads)
    assert CATALOGUE.last_position(app) == 1  # unchanged log: nothing read
    assert len(reads) == before
    note.sign()
    app.save(note)
    assert CATALOGUE.last_position(app) == 3
    # Each store is its own: another app's log is read for itself.
    other = Notes()
    assert CATALOGUE.last_position(other) == 0
    other.write("elsewhere")
    assert CATALOGUE.last_position(other) == 1 and CATALOGUE.last_position(app) == 3
