"""Whether a question is about coding, decided from what it carries (services.assistant.
scope): off-topic questions are refused OUT_OF_SCOPE and never given a code, borderline
coding questions in a patient's words or about the trade are not refused."""

from __future__ import annotations

import pytest

from services.assistant.composer import OfflineComposer
from services.assistant.domain import RefusalCode
from services.assistant.scope import clinical_share, content_words, is_clinical
from services.lookup.client import LocalLookup

OFF_TOPIC = [
    "who won the world cup",
    "who won the football game last night",
    "how do I bake sourdough bread",
    "how many cups in a gallon",
    "what is the capital of France",
    "who wrote hamlet",
    "how tall is mount everest",
    "how tall is the tallest building in the world",
    "what is a good name for a dog",
]

# Borderline but about coding: never refused, the right code cited first ("i keep throwing
# up" is answered unsure, the nearest results first: no code set knows "keep").
ON_TOPIC = [
    ("my tummy hurts", "R10"),
    ("sore throat and fever", "J02"),
    ("struck by a football", "W21.01"),
    ("fell off a ladder at work", "W11"),
    ("bitten by a dog", "W54.0"),
    ("laparoscopic appendectomy", "0DTJ4ZZ"),
    ("kawasaki disease", "M30.3"),
    ("open splenectomy", "07TP0ZZ"),
    ("chest tightness when walking", "R07"),
    ("i keep throwing up", "R11"),
]


def test_content_words_leave_out_the_question_around_them() -> None:
    assert content_words("who won the world cup in 2022") == ["won", "world", "cup"]
    assert content_words("my tummy hurts, tummy") == ["tummy", "hurts"]
    assert content_words("i keep throwing up") == ["keep", "throwing"]


def clinical(content: list[str], entries: list[int], title: str) -> bool:
    return is_clinical(clinical_share(content, entries, title))


def test_one_incidental_word_in_the_best_title_is_not_clinical() -> None:
    # "cup" is in the title but the rest of the question is foreign to the code sets.
    assert not clinical(["won", "world", "cup"], [0, 0, 2], "Cup of something")
    assert not clinical(["won", "football", "game", "last", "night"], [0, 12, 7, 6, 31],
                        "Nightmare disorder")
    # Nor one beside a word the external causes use ("building" collapsed).
    assert not clinical(["tall", "tallest", "building", "world"], [4, 0, 150, 0],
                        "Constitutional tall stature")
    # Words many entries use are clinical, whatever the title says.
    assert clinical(["tummy", "hurts"], [1841, 1742], "Abdominal pain")
    # A rare word the title holds counts, beside a common one or alone.
    assert clinical(["struck", "football"], [2069, 12], "Struck by football, initial encounter")
    assert clinical(["sarcoidosis"], [9], "Sarcoidosis, unspecified")
    assert clinical(["splenectomy"], [0], "Resection of Spleen")
    # A lay word of one concept, used by few entries, counts half beside "chest".
    assert clinical(["chest", "tightness", "walking"], [3254, 7, 33], "Other chest pain")
    # Everyday words no entry uses count neither way; words no entry uses count nothing.
    assert clinical(["keep", "throwing"], [0, 40], "Vomiting")
    assert not clinical(["capital", "france"], [53, 0], "Face")
    assert not clinical([], [], "Anything")


@pytest.mark.parametrize("question", OFF_TOPIC)
async def test_off_topic_questions_are_refused_without_a_code(
        lookup: LocalLookup, question: str) -> None:
    composer = OfflineComposer(lookup)
    answer = await composer.compose(question, None, [])
    assert answer.refusal is RefusalCode.OUT_OF_SCOPE, answer.text
    assert not answer.citations
    assert not await composer.in_scope(question)


@pytest.mark.parametrize(("question", "code"), ON_TOPIC)
async def test_borderline_coding_questions_are_answered(
        lookup: LocalLookup, question: str, code: str) -> None:
    composer = OfflineComposer(lookup)
    answer = await composer.compose(question, None, [])
    assert answer.refusal is None, answer.text
    assert answer.citations[0].code.startswith(code), answer.text
    assert await composer.in_scope(question)


async def test_a_coding_question_without_a_match_is_unsure_not_refused(
        lookup: LocalLookup) -> None:
    """'modifier 25' is a CPT matter (not loaded here): the answer says it is unsure and
    lists the nearest results, never one of them as the code."""
    answer = await OfflineComposer(lookup).compose("what is a modifier 25", None, [])
    assert answer.refusal is None and answer.unsure
    assert answer.text.startswith("I am not sure")
