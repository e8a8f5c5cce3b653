"""Whether a question is about medical coding, from what it carries rather than a list
of off-topic subjects.

A question is in scope when it carries coding intent (a code, a code set's name, a word
of the trade or a coding verb: ``Reading.coding_words``; a follow-up in a conversation)
or clinical content. Clinical content is measured on the question's content words
(stopwords, numbers and words under three letters left out; everyday words too, unless
the code sets use them: "throwing" up): at least half of them must be clinical, where a
word counts whole when

- the code sets use it widely: many indexed entries hold it (titles, inclusion terms,
  the lexicon's lay words: "tummy", "sore", "knee"); or
- the best search hit's title holds it and another of them, so a rare condition or an
  external cause named as the code set names it ("struck by a football") counts, while
  one incidental word matched ("cup" among "who won the world cup", "tall" among "how
  tall is the tallest building": "Constitutional tall stature") does not make the rest
  clinical; or
- it names a procedure by its suffix ("splenectomy"),

and half when only a few entries use it (a lay word of one concept, "tightness", or an
incidental one, "football", "game", "ladder"); a word no entry uses ("pizza", "world",
"france") counts nothing.

Without intent or clinical content the answer is a polite OUT_OF_SCOPE; with intent but
nothing clinical at all it is unsure and lists the nearest results, never one of them
as the answer.
"""

from __future__ import annotations

from services.assistant.reading import PROCEDURE_SUFFIXES
from services.lookup.client import EVERYDAY, STOPWORDS
from services.shared.search.text import stem, words

# How many indexed entries must use a word for it to count as the code sets' working
# vocabulary: clinical words are held by hundreds to thousands, incidental ones by a few.
MEDICAL_WORD_ENTRIES = 100


def content_words(subject: str) -> list[str]:
    """The words that may say what a question is about, each once."""
    return list(dict.fromkeys(w for w in words(subject)
                              if len(w) >= 3 and w.isalpha() and w not in STOPWORDS))


def clinical_share(content: list[str], entries: list[int], best_title: str) -> float:
    """The share of the content words that are clinical, counted whole or half (see the
    module docstring), given how many indexed entries use each and the best search hit's
    title."""
    held = {stem(w) for w in words(best_title)}
    named = [w for w in content if stem(w) in held]
    named = named if len(named) > 1 or len(content) == 1 else []  # one alone: incidental
    weights = []
    for word, n in zip(content, entries, strict=True):
        if n >= MEDICAL_WORD_ENTRIES or word in named or word.endswith(PROCEDURE_SUFFIXES):
            weights.append(1.0)
        elif n:
            weights.append(0.5)
        elif word not in EVERYDAY:
            weights.append(0.0)
    return sum(weights) / len(weights) if weights else 0.0


def is_clinical(share: float) -> bool:
    return share >= 0.5
