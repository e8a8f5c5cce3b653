"""What a text must hold to hold a word with a given stem (text.stem_marks): the ranker
skips reading texts holding none of a query's marks, so a mark that a word with the stem
lacks would hide a match."""

from __future__ import annotations

from services.lookup.icd10cm import default_tabular_path, parse_tabular
from services.lookup.search.documents import CodeDocument
from services.lookup.search.matching import Query
from services.lookup.search.scoring import rank
from services.shared.search.model import QueryPlan
from services.shared.search.text import IRREGULAR, fold, stem, stem_marks, words


def held(word: str) -> bool:
    return any(mark in word for mark in stem_marks(stem(word)))


def test_every_word_holds_a_mark_of_its_stem() -> None:
    # Porter's rewrites of a word's last letters ("y" -> "i", "biliti" -> "ble", an "e"
    # added after "ing" or "ed" is cut), and irregular forms, which share no start.
    tricky = ["injury", "possibility", "sensibility", "hoping", "hopping", "relational",
              "organization", "conditional", "dying", "ponies", "agreed", "happily",
              "generalization", "communicated", "ability", "feet", "fallen", "torn"]
    assert [w for w in tricky if not held(w)] == []


def test_every_word_of_the_icd10cm_titles_and_notes_holds_a_mark_of_its_stem() -> None:
    texts = {text for entry in parse_tabular(default_tabular_path()).entries
             for text in (entry.title, *(n for notes in entry.notes.values() for n in notes))}
    vocabulary = {w for text in texts for w in words(text)}
    assert len(vocabulary) > 5000
    assert sorted(w for w in vocabulary if not held(w)) == []


def test_an_irregular_form_is_the_mark_of_its_regular_stem() -> None:
    for form, regular in IRREGULAR.items():
        assert form in stem_marks(stem(regular))


def test_a_term_is_found_by_the_query_word_it_holds_in_another_form() -> None:
    """The ranker reads a term only when it holds a mark of a query word: "feet" is
    found for "foot", "possibility" for "possible" (their stems start otherwise)."""
    terms = {"S97.80XA": ("Crushing injury of both feet",),
             "Z71.89": ("Counseling about a possibility of relapse",)}
    docs = [CodeDocument("ICD10CM", code, "Other title", True, "code", chapter="21",
                         terms=held_terms) for code, held_terms in terms.items()]
    other = CodeDocument("ICD10CM", "R69", "Illness, unspecified", True, "code")
    for query, expected in (("foot", "S97.80XA"), ("possible", "Z71.89")):
        q = Query.of(words(fold(query)))
        assert rank(QueryPlan(words=()), [other, *docs], [q])[0].code == expected
