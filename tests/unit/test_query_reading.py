"""How lookup reads the long tail of queries: procedure or condition, filler, sides,
letters run into numbers, nouns and their adjectives."""

from __future__ import annotations

import pytest

from services.lookup.search.intent import asks_procedure
from services.lookup.search.spelling import Vocabulary
from services.lookup.search.wording import content_words, query_tokens, query_words


def _words(text: str) -> tuple[str, ...]:
    return query_words(tuple(query_tokens(text)))


@pytest.mark.parametrize("query", [
    "laparoscopic cholecystectomy", "excision of breast lesion", "knee arthroscopy",
    "egd w bx", "fasciotomy lower leg", "lumbar fusion",
])
def test_a_query_naming_a_procedure_asks_for_one(query: str) -> None:
    assert asks_procedure(_words(query))


@pytest.mark.parametrize("query", [
    "my knee gives out when i walk", "left foot swollen", "s/p colostomy",
    "history of appendectomy", "infected knee replacement", "trach dependent",
])
def test_a_condition_or_a_state_after_a_procedure_does_not(query: str) -> None:
    assert not asks_procedure(_words(query))


def test_filler_is_not_required_unless_it_is_all_there_is() -> None:
    assert content_words(("feel", "tired", "day")) == ("tired",)
    assert content_words(("feel", "day")) == ("feel", "day")


def test_abbreviated_sides_are_spelt_out_beside_other_words() -> None:
    assert query_tokens("fx l wrist") == ["fx", "left", "wrist"]
    assert query_tokens("rt knee pain") == ["right", "knee", "pain"]
    assert query_tokens("bilat cataracts") == ["bilateral", "cataracts"]
    assert query_tokens("r") == ["r"]  # alone it is not a side
    assert query_tokens("s/p colostomy") == ["status", "post", "colostomy"]


VOCABULARY = Vocabulary([
    "Chronic kidney disease, stage 3", "CKD", "dm2", "Streptococcal sepsis",
    "Sepsis due to streptococcus", "Viral pneumonia", "Psychotic disorder",
])


def test_letters_run_into_a_number_split_when_only_the_letters_are_known() -> None:
    assert VOCABULARY.split("ckd3") == ("ckd", "3")
    assert VOCABULARY.split("dm2") == ("dm2",)  # known as it is
    assert VOCABULARY.split("xyz3") == ("xyz3",)  # nothing known to split into


def test_a_noun_is_read_as_the_adjective_the_index_uses() -> None:
    assert VOCABULARY.adjective("streptococcus") == "streptococcal"
    assert VOCABULARY.adjective("virus") == "viral"
    assert VOCABULARY.adjective("psychosis") == "psychotic"
    assert VOCABULARY.adjective("sepsis") == "sepsis"  # no adjective known
