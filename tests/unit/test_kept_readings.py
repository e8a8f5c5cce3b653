"""An entry's title as the ranker reads it, kept with the document at index time
(readings.Reading.kept): restored as read, and only by the rules it was read by."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest

from services.lookup.search.documents import CODES, CodeDocument, code_plan
from services.lookup.search.matching import Query
from services.lookup.search.readings import RULES, Reading, read_again, restore
from services.lookup.search.scoring import rank
from services.lookup.search.search_readings import begin_search, keep, read

TITLES = [
    "Type 2 diabetes mellitus with diabetic chronic kidney disease",
    "Gastro-esophageal reflux disease without esophagitis",
    "Cholelithiasis (without cholecystitis) of gallbladder, unspecified",
    "Stroke NOS",
    "Swimmer's ear, unspecified ear",
    "Acute pharyngitis [sore throat]; streptococcal",
    "Mal de débarquement",
    "Unspecified as acute or chronic bronchitis",
]


def _read(reading: Reading) -> tuple[object, ...]:
    return (reading.text, reading.stems, reading.spaced, reading.nos, reading.negated,
            reading.details, reading.name, reading.sequence)


@pytest.mark.parametrize("title", TITLES)
def test_a_kept_reading_is_restored_as_the_title_reads(title: str) -> None:
    kept = orjson.loads(orjson.dumps(Reading(title).kept()))  # as the index keeps it
    restored = restore(title, kept)
    assert restored is not None
    assert _read(restored) == _read(Reading(title))


def test_details_name_and_sequence_are_kept_as_places_among_the_stems() -> None:
    """(Small numbers decode without making strings, and the restored reading shares the
    stems' strings.) Where one is not a stem, they are kept as they are."""
    title = TITLES[0]
    kept = orjson.loads(orjson.dumps(Reading(title).kept()))
    assert kept[5] and kept[6] and kept[7]
    assert all(type(place) is int for place in kept[5] + kept[6] + kept[7])
    restored = restore(title, kept)
    assert restored is not None
    assert restored.details[0] is restored.stems[kept[5][0]]
    assert restored.sequence[-1] is restored.stems[kept[7][-1]]
    as_words = list(Reading(title).details)
    other = restore(title, [*kept[:5], ["extra", *as_words], *kept[6:]])
    assert other is not None
    assert other.details == ("extra", *as_words)
    assert other.kept()[5] == ["extra", *as_words]  # ("extra" is not among its stems)


def test_a_reading_kept_by_other_rules_is_read_again() -> None:
    kept = Reading(TITLES[0]).kept()
    assert kept[0] == RULES
    assert restore(TITLES[0], ["0" * 16, *kept[1:]]) is None
    assert restore(TITLES[0], None) is None


def test_titles_not_kept_by_these_rules_are_counted() -> None:
    """(So that warming search up can say the index should be rebuilt.)"""
    kept = Reading(TITLES[0]).kept()
    before = read_again()
    restore(TITLES[0], kept)
    assert read_again() == before
    restore(TITLES[0], ["0" * 16, *kept[1:]])
    restore(TITLES[0], None)
    assert read_again() == before + 2


def _entry(title: str, code: str = "E11.22") -> CodeDocument:
    return CodeDocument(system="ICD10CM", code=code, title=title, billable=True,
                        kind="code", chapter="4")


def test_an_indexed_entry_loads_as_it_was() -> None:
    entry = _entry(TITLES[0])
    stored = orjson.loads(orjson.dumps(CODES.index(entry).stored))
    assert stored["title_reading"] == Reading(entry.title).kept()
    assert CODES.load(stored) == entry
    # Kept by other rules (an index built before they changed): read again when ranked.
    stale = {**stored, "title_reading": ["0" * 16, *stored["title_reading"][1:]]}
    assert CODES.load(stale) == entry
    assert _read(read(entry.title)) == _read(Reading(entry.title))


@pytest.fixture
def doctored() -> Iterator[str]:
    """A title whose reading the test doctors; read honestly again afterwards."""
    title = "Acute cough"
    yield title
    keep(Reading(title))


def test_the_ranker_reads_a_loaded_title_as_the_index_kept_it(doctored: str) -> None:
    """Not read again: as kept, this title holds no "cough", and the other ranks first."""
    kept = Reading(doctored).kept()
    kept[1] = [s for s in kept[1] if s != "cough"]
    kept[2] = " acute"
    kept[5] = kept[6] = kept[7] = [0]  # (details, name, sequence: places among the stems)
    entry = CODES.load({**CODES.index(_entry(doctored, "R05.1")).stored, "title_reading": kept})
    other = _entry("Cough, acute", "R05.9")
    readings = [Query.of(("acute", "cough"))]
    ranked = rank(code_plan(("acute", "cough")), [entry, other], readings)
    assert [d.code for d in ranked] == ["R05.9", "R05.1"]


def test_a_search_begins_with_none_of_the_readings_read_before() -> None:
    kept = keep(Reading("read before this search"))
    assert read("read before this search") is kept
    begin_search()
    again = read("read before this search")
    assert again is not kept and again.stems == kept.stems
    assert read("read before this search") is again  # kept for the rest of the search


def test_the_least_recently_read_texts_are_dropped_first() -> None:
    """Readings are kept for ``read`` up to a bound; the texts read least lately go first,
    and one read again counts as read lately."""
    from services.lookup.search.search_readings import _MAX_READ

    first = keep(Reading("kept reading, first"))
    again = keep(Reading("kept reading, read again"))
    for n in range(2 * _MAX_READ):
        latest = keep(Reading(f"kept reading {n}"))
        if n % 100 == 0:
            assert read("kept reading, read again") is again
    assert read("kept reading, read again") is again
    assert read(latest.text) is latest
    assert read("kept reading, first") is not first  # dropped: read afresh
