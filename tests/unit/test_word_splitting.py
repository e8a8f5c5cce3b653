"""Splitting a text into words (text.words) and into words and clause marks
(wording.bare_tokens): an ASCII text is split by ``str.translate`` and ``split`` for
speed, and must give exactly what the definitions, written here as patterns, give."""

from __future__ import annotations

import re

import pytest

from services.lookup.icd10cm import default_tabular_path, parse_tabular
from services.lookup.search.wording import bare_tokens
from services.shared.search import text as words_module
from services.shared.search.text import fold, stem, words

# The definitions: runs of letters and digits of the folded text; for bare tokens also
# "," and ";", once (parentheses) and [brackets] are taken out.
_WORD = re.compile(r"[a-z0-9]+")
_BARE = re.compile(r"[a-z0-9]+|[,;]")
_ASIDE = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")


def defined_words(text: str) -> list[str]:
    return _WORD.findall(fold(text))


def defined_bare_tokens(text: str) -> list[str]:
    return _BARE.findall(fold(_ASIDE.sub(" ", text)))


TRICKY = [
    "", " ", " , ; ", "a_b", "snake_case_word", "x\ty\nz\r\x0b\x0cw", "e.g. 3/4-inch",
    "Type II, stage 3a; NOS", "Crohn's disease (regional enteritis) [ileitis], small",
    "((nested) parentheses) and [unclosed", "~!@#$%^&*+=`|\\:\"'<>?{}", "\x00\x7f",
    "Crème brûlée", "Ærøskøbing, Straße; ﬁbrosis ½", "ＦＵＬＬ　ｗｉｄｔｈ",
]


@pytest.mark.parametrize("text", TRICKY)
def test_words_and_bare_tokens_are_as_defined(text: str) -> None:
    assert words(text) == defined_words(text)
    assert bare_tokens(text) == defined_bare_tokens(text)


def test_every_icd10cm_title_and_note_splits_as_defined() -> None:
    texts = {text for entry in parse_tabular(default_tabular_path()).entries
             for text in (entry.title, *(n for notes in entry.notes.values() for n in notes))}
    assert len(texts) > 50_000
    assert [t for t in texts if words(t) != defined_words(t)] == []
    assert [t for t in texts if bare_tokens(t) != defined_bare_tokens(t)] == []


def test_stems_kept_in_a_process_are_bounded() -> None:
    # What people type is unbounded: the stems kept are emptied when full, and the
    # stems found stay the same.
    assert stem("fractures") == "fractur"
    for i in range(words_module._MAX_STEMS + 10):
        stem(f"x{i}")
    assert 0 < len(words_module._STEMS) <= words_module._MAX_STEMS
    assert stem("fractures") == "fractur" and stem("feet") == "foot"
