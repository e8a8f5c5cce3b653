"""What a lookup query asks for, as search reads it against the live index before
asking a backend: words corrected against the index's own vocabulary (a word cut short
read as the word the other words are found with), other wordings of it (irregular forms,
pain, sides, adjectives, denials, filler left out, notation spelt out), and the
conditions it names, which count more (search.names).

Apart from the engine (services.lookup.search.engine), which decides what to ask a
backend for and ranks what comes back.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from services.lookup.lexicon import default_lexicon
from services.lookup.search.gathering import plan_order, retrievable
from services.lookup.search.intent import asks_pregnancy, asks_procedure
from services.lookup.search.matching import Query
from services.lookup.search.names import Names
from services.lookup.search.spelling import MAX_CORRECTED, MIN_TRUNCATED, Vocabulary, joined
from services.lookup.search.wording import (
    content_words,
    denied,
    first_person,
    painful,
    past,
    query_words,
    said,
    spinal_levels,
    trimester_weeks,
)
from services.shared.search.model import QueryPlan, SearchCatalog, SearchIndex
from services.shared.search.text import IRREGULAR
from services.shared.search.versions import PerVersion

# A query said in words (wording.said) this long is a sentence: the conditions it names
# count more than its other words (search.names).
_SENTENCE = 4
# How many of the words a word cut short begins are tried with the query's other words
# (_completed_in_context), the commonest first.
_COMPLETIONS = 8


@dataclass(frozen=True)
class Interpretation:
    """What the query asks for, as search reads it before asking a backend."""

    plan: QueryPlan  # as typed (filters, code, window)
    asked: tuple[str, ...]  # the words, spelling corrected, stopwords dropped
    wordings: list[tuple[str, ...]]  # asked, and other wordings of it (interpret)
    readings: list[Query]  # the wordings as the ranker reads them
    vocabulary: Vocabulary | None
    names: Names | None  # other names of conditions (search.names), for a relaxed search
    corrected: bool  # the last word was spelling corrected or split (then it is whole)
    # The conditions the query names (search.names), where no wording is just them.
    named: tuple[str, ...] = ()


# The spelling vocabulary of each index version (see services.shared.search.versions).
VOCABULARIES: PerVersion[Vocabulary] = PerVersion(
    lambda documents: Vocabulary.of(documents), lambda: Vocabulary(())
)
# The other names of conditions (search.names), likewise.
NAMES: PerVersion[Names] = PerVersion(
    lambda documents: Names.of(documents, default_lexicon()), lambda: Names(())
)


def _needs_vocabulary(words: tuple[str, ...]) -> bool:
    return any(
        (MIN_TRUNCATED <= len(w) <= MAX_CORRECTED and w.isalpha()) or joined(w) for w in words
    )


async def interpret(
    catalog: SearchCatalog, index: SearchIndex, plan: QueryPlan,
    diagnosis: tuple[str, ...] = (), told: tuple[str, ...] = (), *, typing: bool = False,
) -> Interpretation:
    """Correct misspelt words against the index's vocabulary, drop stopwords, and read
    irregular forms also as their base ("feet", "bitten"), and spinal levels and weeks of
    pregnancy also as titles say them. The ``diagnosis`` a query says was made
    (wording.diagnosis_of), or the condition it says someone ``told`` a thing is
    (wording.said_to_be), is also searched alone, and its words count more in the
    ranking; in a sentence saying neither, so do the words naming a condition.
    Filler ("feel", "day", "think") is also left out of one wording, so an entry need not
    hold it; the ranker still counts it where an entry says it ("heart stopped"). A query
    still ``typing`` may end in the first two letters of a word (_begun_while_typing)."""
    typed = plan.words
    vocabulary = None
    if _needs_vocabulary(typed) or (len(typed) > 1 and plan.key is None):
        vocabulary = await VOCABULARIES.of(catalog, index)
    if vocabulary is not None and _needs_vocabulary(typed):
        typed = tuple(part for w in typed for part in vocabulary.split(w))
        last = len(typed) - 1
        read = tuple(vocabulary.correct(w, as_prefix=i == last) for i, w in enumerate(typed))
        if last > 0:  # "open fr": a start too short to search by, with words to read it by
            begun = vocabulary.begun(read[-1])
            if typing and begun == read[-1]:
                begun = await _begun_while_typing(index, plan, read, vocabulary)
            read = (*read[:-1], begun)
        typed = await _completed_in_context(index, plan, typed, read, vocabulary)
    # No entry says "herself": the lexicon says "cutting myself" (wording.first_person).
    asked = first_person(query_words(typed))
    # The last word as typed may be the start of one; corrected, it is whole ("diabetis
    # hyperglyc" is still being typed: "hyperglyc" begins "hyperglycemia").
    corrected = typed[-1:] != plan.words[-1:]
    wordings, spoken = [asked], [asked]
    base = tuple(IRREGULAR.get(w, w) for w in asked)
    if base != asked:  # indexes hold "flat foot" and "swollen feet" alike
        wordings.append(base)
        spoken.append(base)
    if (pain := painful(asked)) != asked:  # "my ear hurts": titles say "ear pain"
        wordings.append(pain)
        spoken.append(pain)
    if (long_ago := past(asked)) != asked:  # "three months ago": a history of it
        spoken.append(long_ago)
    # "didnt pass out": "without loss of ...". Ranked only: "without" is in thousands of
    # titles, and entries holding it with the rest ("no periods") are not what is meant.
    if (denial := denied(asked)) != asked:
        spoken.append(denial)
    if "both" in asked:  # "both eyes": titles say "bilateral" (and a few "both eyes")
        bilateral = tuple("bilateral" if w == "both" else w for w in asked)
        wordings.append(bilateral)
        spoken.append(bilateral)
    if vocabulary is not None:  # "sepsis due to streptococcus": "Streptococcal sepsis"
        adjectival = tuple(vocabulary.adjective(w) for w in asked)
        if adjectival != asked:
            wordings.append(adjectival)
            spoken.append(adjectival)
    if (content := content_words(asked)) != asked:  # also without the filler
        wordings.append(content)
    named: tuple[str, ...] = ()
    names = await NAMES.of(catalog, index) if len(asked) > 1 else None
    if told and names is not None and vocabulary is not None:
        # "the doctor said the rash on my side is shingles"; not "... her ear is red".
        diagnosis = names.named(tuple(vocabulary.correct(w) for w in told))
    # "... and the ct showed a stroke"; not for a procedure ("reduction of dislocated
    # shoulder" is the reduction).
    if vocabulary is not None and diagnosis and not asks_procedure(asked, surely=True):
        named = tuple(vocabulary.correct(w) for w in diagnosis)
        if named != asked:  # found as well, where the signs strewn in the query are not
            wordings.append(named)
    if (not named and names is not None and len(asked) >= _SENTENCE and said(plan.words)
            and not asks_procedure(asked, surely=True)):
        # A sentence names no diagnosis made, but may name conditions among its words
        # ("my psoriasis keeps flaring up on my elbows"): they count more than the rest,
        # symptoms aside (search.names).
        named = names.named(asked, diagnoses=True)
    readings = [
        Query.of(w, prefix=not corrected and i == 0, typed=" ".join(typed) if i == 0 else "",
                 stressed=named)
        for i, w in enumerate(spoken)
    ]
    spelt = spinal_levels(asked)  # "l5": "fifth lumbar vertebra"
    if asks_pregnancy(asked):  # "32 weeks pregnant": "third trimester pregnant"
        spelt += trimester_weeks(asked)
    for words in spelt:
        wordings.append(words)
        readings.append(Query.of(words, spelt=True))
    sought = named  # and searched for by themselves, in any query (_find)
    if not named and names is not None and not asks_procedure(asked, surely=True):
        sought = names.named(asked)
    return Interpretation(plan, asked, wordings, readings, vocabulary, names, corrected,
                          () if sought in wordings else sought)


async def _begun_while_typing(
    index: SearchIndex, plan: QueryPlan, read: tuple[str, ...], vocabulary: Vocabulary
) -> str:
    """The last word of a query still being typed, when entries hold it as typed but none
    with the query's other words, read as a word it begins (Vocabulary.begun): in a
    search box, "paranoid pe" is on its way to "personality", though "pe" is an
    abbreviation some entries hold. Only while typing: a query sent whole means its
    abbreviations, as "bilat pe" means a pulmonary embolism though no entry holds
    "bilateral" with "pe"."""
    word = read[-1]
    others = query_words(read[:-1])
    begun = vocabulary.begun(word, held=True)
    if begun == word or not others:
        return word
    counted = await index.candidates(_counting(plan, (word, *others)))
    return word if counted.total else begun


async def _completed_in_context(
    index: SearchIndex, plan: QueryPlan, typed: tuple[str, ...], read: tuple[str, ...],
    vocabulary: Vocabulary,
) -> tuple[str, ...]:
    """The words as spelling ``read`` them, with each word cut short (read as the
    commonest word it begins: Vocabulary.correct) read instead as the word it begins
    that the most entries hold with the query's other words: "conc" alone is most often
    "conception", but "conc w/o loc" is a concussion without loss of consciousness.
    Left as read where no entry holds any such word with the others; two letters still
    being typed (Vocabulary.begun) are then left as typed."""
    cut = [i for i, (t, r) in enumerate(zip(typed, read, strict=True))
           if r != t and r.startswith(t)]
    words = list(read)
    for i in cut:
        others = query_words(tuple(words[:i] + words[i + 1 :]))
        if not others:
            continue
        choices = vocabulary.completions(typed[i], _COMPLETIONS, content=True)
        counted = await index.candidates_each([_counting(plan, (word, *others))
                                               for word in choices])
        most = max(range(len(choices)), key=lambda k: (counted[k].total, -k))
        if counted[most].total:
            words[i] = choices[most]
        elif len(typed[i]) < MIN_TRUNCATED:  # begun (Vocabulary.begun): only in context
            words[i] = typed[i]
    return tuple(words)


def _counting(plan: QueryPlan, words: tuple[str, ...]) -> QueryPlan:
    """A plan that only counts the entries holding the words, under the plan's filters."""
    return replace(plan, words=plan_order(retrievable(words)), window=0, count=True)
