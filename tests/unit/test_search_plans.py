"""What lookup's engine asks a backend for, against a backend that scores its own way.

Backends order matches of any word by their own scoring, so the best few of a sentence's
words differ from one backend to the other. The engine must not depend on that order to
find the entry holding two of the words. The double below is a backend whose order is
the worst case: every entry holding one word comes before the one holding two.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from services.lookup.application import CodeSets
from services.lookup.client import LocalLookup
from services.lookup.search import engine, gathering
from services.lookup.search.documents import CodeDocument
from services.lookup.search.engine import search
from services.shared.search.model import Candidates, Facets, QueryPlan
from services.shared.search.text import stem, words
from services.shared.settings import Settings

_names = itertools.count()


@dataclass
class WorstOrderIndex:
    """Matches a plan's code (as the start of an entry's) and words (stemmed; the last
    also as a prefix) in titles and terms: code matches first, shortest first, then word
    matches in reverse code order, at most ``plan.window``."""

    docs: list[CodeDocument]
    name: str = field(default_factory=lambda: f"worst-{next(_names)}")

    def _holds(self, doc: CodeDocument, word: str, last: bool) -> bool:
        held = [w for text in (doc.title, *doc.terms) for w in words(text)]
        return stem(word) in {stem(w) for w in held} or (
            last and any(w.startswith(word) for w in held)
        )

    async def candidates(self, plan: QueryPlan) -> Candidates[CodeDocument]:
        def matches(doc: CodeDocument) -> bool:
            found = [
                self._holds(doc, w, i == len(plan.words) - 1) for i, w in enumerate(plan.words)
            ]
            return all(found) if plan.match_all else any(found)

        keyed = sorted(
            (d for d in self.docs if plan.key and d.compact.startswith(plan.key)),
            key=lambda d: (len(d.compact), d.compact),
        )
        worded = sorted(
            (d for d in self.docs if plan.words and matches(d) and d not in keyed),
            key=lambda d: d.code, reverse=True,
        )
        found = keyed + worded
        if plan.whole and len(found) > plan.window:
            return Candidates([], len(found))
        return Candidates(found[: plan.window], len(found))

    async def candidates_each(self, plans: list[QueryPlan]) -> list[Candidates[CodeDocument]]:
        return [await self.candidates(plan) for plan in plans]

    async def count(self) -> int:
        return len(self.docs)

    async def documents(self) -> list[CodeDocument]:
        return list(self.docs)


@dataclass(eq=False)  # hashable by identity, as derived data is kept per catalog
class Catalog:
    index: WorstOrderIndex

    async def live(self) -> WorstOrderIndex:
        return self.index


def first(docs: list[CodeDocument], text: str) -> list[str]:
    """The code search ranks first for ``text`` over ``docs`` (a worst-order backend)."""
    results = asyncio.run(search(Catalog(WorstOrderIndex(docs)), text))  # type: ignore[arg-type]
    return [d.code for d in results.documents][:1]


def test_an_entry_holding_two_words_of_a_sentence_is_found_whatever_the_backend_order() -> None:
    crowd = [
        CodeDocument("ICD10CM", f"S{i:03d}", f"Fast {word} {i}", True, "code")
        for i, word in zip(range(300), itertools.cycle(["motion", "growth", "rate"]))
    ]
    wanted = CodeDocument(
        "ICD10CM", "R00.2", "Palpitations", True, "code", terms=("heart pounding",)
    )
    assert first([*crowd, wanted], "my heart is pounding so fast at night") == ["R00.2"]


def test_a_rare_word_s_one_entry_is_not_buried_under_a_common_word_s_thousands() -> None:
    """No entry says both "kawasaki" and "disease"; the one saying "Kawasaki" is what is
    meant, not any of the thousands saying "disease" (the ranker weighs words alike)."""
    common = [
        CodeDocument("ICD10CM", f"D{i:04d}", f"Disease {i}", True, "code") for i in range(5200)
    ]
    kawasaki = CodeDocument(
        "ICD10CM", "M30.3", "Mucocutaneous lymph node syndrome [Kawasaki]", True, "code"
    )
    assert first([*common, kawasaki], "kawasaki disease") == ["M30.3"]


def test_a_seventh_character_typed_without_its_placeholders_finds_the_code() -> None:
    """Coders drop the X's: "s13.4a" is S13.4XXA. But C83.5A is a code of its own, and
    is what "c83.5a" names."""
    docs = [
        CodeDocument("ICD10CM", "S13.4XXA", "Sprain of ligaments of cervical spine, initial "
                     "encounter", True, "code"),
        CodeDocument("ICD10CM", "S13.4XXD", "Sprain of ligaments of cervical spine, "
                     "subsequent encounter", True, "code"),
        CodeDocument("ICD10CM", "C83.5A", "Lymphoblastic (diffuse) lymphoma, in remission",
                     True, "code"),
    ]
    for typed, code in [("s13.4a", "S13.4XXA"), ("S134D", "S13.4XXD"), ("c83.5a", "C83.5A")]:
        assert first(docs, typed) == [code], typed


def test_placeholders_typed_where_no_seventh_character_follows_are_dropped() -> None:
    """No ICD-10-CM code ends in X: "E11.9x" is E11.9. A PCS code may ("0DBN8ZX"). And
    a letter l typed for a one is a one."""
    docs = [
        CodeDocument("ICD10CM", "E11.9", "Type 2 diabetes mellitus without complications",
                     True, "code"),
        CodeDocument("ICD10PCS", "0DBN8ZX", "Excision of Sigmoid Colon, Via Natural or "
                     "Artificial Opening Endoscopic, Diagnostic", True, "code"),
    ]
    for typed, code in [("E11.9x", "E11.9"), ("e119xx", "E11.9"), ("0dbn8zx", "0DBN8ZX"),
                        ("E1l.9", "E11.9")]:
        assert first(docs, typed) == [code], typed



def _codes(docs: list[CodeDocument], text: str) -> list[str]:
    results = asyncio.run(search(Catalog(WorstOrderIndex(docs)), text))  # type: ignore[arg-type]
    return [d.code for d in results.documents]


def test_with_few_entries_holding_every_word_those_missing_some_follow_them() -> None:
    """Melioidosis names sepsis and pneumonia; a coder asking for both wants each too."""
    docs = [
        CodeDocument("ICD10CM", "A24.1", "Acute and fulminating melioidosis", True, "code",
                     terms=("Melioidosis sepsis", "pna")),
        CodeDocument("ICD10CM", "A41.9", "Sepsis, unspecified organism", True, "code"),
        CodeDocument("ICD10CM", "J18.9", "Pneumonia, unspecified organism", True, "code",
                     terms=("pna",)),
    ]
    found = _codes(docs, "sepsis pna")
    assert found[0] == "A24.1"
    assert {"A41.9", "J18.9"} <= set(found)


def test_an_entry_holding_every_word_stays_ahead_of_one_that_reads_better_but_misses_one() -> None:
    """The fracture's title holds three of the words in one text, the reduction all four
    over its texts: the reduction is what was asked for."""
    docs = [
        CodeDocument("ICD10PCS", "0PSB04Z", "Reposition Left Clavicle with Internal Fixation "
                     "Device, Open Approach", True, "code", terms=("orif", "fracture reduction")),
        CodeDocument("ICD10CM", "S42.002A", "Fracture of unspecified part of left clavicle, "
                     "initial encounter for closed fracture", True, "code"),
    ]
    assert _codes(docs, "orif left clavicle fracture") == ["0PSB04Z", "S42.002A"]


def test_a_list_of_codes_lists_each_in_the_order_typed_and_nothing_their_digits_match() -> None:
    docs = [
        CodeDocument("ICD10CM", "E11.9", "Type 2 diabetes mellitus without complications",
                     True, "code"),
        CodeDocument("ICD10CM", "I10", "Essential (primary) hypertension", True, "code"),
        CodeDocument("ICD10CM", "E78.5", "Hyperlipidemia, unspecified", True, "code"),
        CodeDocument("ICD10CM", "R29.709", "NIHSS score 9", True, "code"),
    ]
    assert _codes(docs, "I10, E11.9, e78.5") == ["I10", "E11.9", "E78.5"]


def test_a_code_typed_among_words_comes_first() -> None:
    docs = [
        CodeDocument("ICD10PCS", "0DTJ0ZZ", "Resection of Appendix, Open Approach", True, "code",
                     terms=("appendectomy",)),
        CodeDocument("ICD10PCS", "0DTJ4ZZ", "Resection of Appendix, Percutaneous Endoscopic "
                     "Approach", True, "code", terms=("appendectomy", "laparoscopic")),
    ]
    assert _codes(docs, "0DTJ4ZZ appendectomy")[0] == "0DTJ4ZZ"


def test_entries_lacking_a_common_word_the_backend_was_not_sent_do_not_stop_the_relaxed_search(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A backend is not sent common words ("bite", "right", "hand"): what it finds for
    "dog bite right hand" is the cause's three codes, which hold neither "right" nor
    "hand", so entries missing a word must still be looked at. (Here a word in more
    than three texts is common.)"""
    monkeypatch.setattr(gathering, "_COMMON", 3)
    cause = [
        CodeDocument("ICD10CM", f"W54.0XX{c}", f"Dog bite, {encounter}", True, "code",
                     chapter="20")
        for c, encounter in [("A", "initial encounter"), ("D", "subsequent encounter"),
                             ("S", "sequela")]
    ]
    others = [
        CodeDocument("ICD10CM", f"M79.64{i}", f"Pain in right hand {i}", True, "code")
        for i in range(3)
    ]
    bite = CodeDocument("ICD10CM", "S61.451A", "Open bite of right hand, initial encounter",
                        True, "code", chapter="19")
    assert "S61.451A" in _codes([*cause, *others, bite], "dog bite right hand")


def test_both_sides_are_what_titles_call_bilateral() -> None:
    docs = [
        CodeDocument("ICD10CM", "H10.31", "Unspecified acute conjunctivitis, right eye", True,
                     "code", terms=("pink eye",)),
        CodeDocument("ICD10CM", "H10.33", "Unspecified acute conjunctivitis, bilateral", True,
                     "code", terms=("pink eye",)),
        CodeDocument("ICD10CM", "H54.0X", "Blindness, both eyes, different category levels",
                     False, "category"),
        CodeDocument("ICD10CM", "H54.0", "Blindness, both eyes", True, "code"),
    ]
    assert first(docs, "pink eye in both eyes") == ["H10.33"]
    assert first(docs, "blindness both eyes") == ["H54.0"]  # as the title says it


def test_an_entry_holding_more_of_the_words_goes_ahead_of_what_the_rarer_words_found(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """None holds every word of "I burned my hand on the stove". What the backend finds
    for the rarest ("Contact with hot stove") holds one of them; the burns of the hand,
    found after, hold two. (Here a word in more than three texts is common.)"""
    monkeypatch.setattr(gathering, "_COMMON", 3)
    stove = [
        CodeDocument("ICD10CM", f"X15.0XX{c}", f"Contact with hot stove, {encounter}", True,
                     "code", chapter="20")
        for c, encounter in [("A", "initial encounter"), ("D", "subsequent encounter"),
                             ("S", "sequela")]
    ]
    burns = [
        CodeDocument("ICD10CM", f"T23.0{i}1A", f"Burn of unspecified degree of right hand {i}, "
                     "initial encounter", True, "code", chapter="19")
        for i in range(4)
    ]
    assert first([*stove, *burns], "I burned my hand on the stove")[0][:3] == "T23"


def test_an_external_cause_found_by_the_rarer_words_does_not_go_ahead_of_its_injury(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """"fell off a ladder and broke my right wrist": the backend finds the fall for the
    rarer words, but a query naming the injury too wants the injury first (its cause is
    coded after it)."""
    monkeypatch.setattr(gathering, "_COMMON", 3)
    fall = [
        CodeDocument("ICD10CM", f"W11.XXX{c}", f"Fall on and from ladder, {encounter}", True,
                     "code", chapter="20", terms=("fell off ladder",))
        for c, encounter in [("A", "initial encounter"), ("D", "subsequent encounter"),
                             ("S", "sequela")]
    ]
    fractures = [
        CodeDocument("ICD10CM", code, f"{kind}, right wrist, initial encounter for closed "
                     "fracture", True, "code", chapter="19", terms=("broken", "broke", "rt"))
        for code, kind in [("S62.101A", "Fracture of unspecified carpal bone"),
                           ("S62.121A", "Displaced fracture of lunate"),
                           ("S62.161A", "Displaced fracture of pisiform"),
                           ("S62.171A", "Displaced fracture of trapezium")]
    ]
    assert first([*fall, *fractures], "fell off a ladder and broke my right wrist")[0][:3] \
        == "S62"


def test_a_word_cut_short_reads_as_the_word_the_other_words_are_found_with() -> None:
    """"conc" begins "conception" more often than "concussion"; with "w/o loc" it is the
    concussion without loss of consciousness, and what is highlighted as asked for."""
    docs = [
        *(CodeDocument("ICD10CM", f"O0{i}.9", f"Complication following conception {i}", True,
                       "code", chapter="15") for i in range(5)),
        CodeDocument("ICD10CM", "K35.30", "Acute appendicitis with localized peritonitis, "
                     "without perforation", True, "code"),
        CodeDocument("ICD10CM", "S06.0X0A", "Concussion without loss of consciousness, "
                     "initial encounter", True, "code", chapter="19", terms=("without loc",)),
        CodeDocument("ICD10CM", "S06.0X9A", "Concussion with loss of consciousness, initial "
                     "encounter", True, "code", chapter="19", terms=("loc",)),
    ]
    results = asyncio.run(search(Catalog(WorstOrderIndex(docs)), "conc w/o loc"))  # type: ignore[arg-type]
    assert results.documents[0].code == "S06.0X0A"
    assert results.asked == ("concussion", "without", "loc")


def test_two_letters_being_typed_read_as_the_word_the_other_words_are_found_with() -> None:
    """"open fr" is a fracture being typed: "fr" begins "from" and "front" too, and no
    entry holds "fr" as a word. Not a stopword ("fracture of"), nor two letters entries
    hold ("bilat pe"), nor two letters no word the others are found with begins."""
    docs = [
        *(CodeDocument("ICD10CM", f"R10.{i}", f"Pain from the front {i}", True, "code")
          for i in range(5)),
        CodeDocument("ICD10CM", "S02.91XB", "Unspecified fracture of skull, initial encounter "
                     "for open fracture", True, "code", chapter="19"),
        CodeDocument("ICD10CM", "S01.90XA", "Unspecified open wound of head, initial encounter",
                     True, "code", chapter="19"),
        CodeDocument("ICD10CM", "I26.99", "Other pulmonary embolism without acute cor "
                     "pulmonale", True, "code", terms=("bilateral pe",)),
        CodeDocument("ICD10CM", "R10.13", "Epigastric pain", True, "code"),
    ]
    catalog = Catalog(WorstOrderIndex(docs))
    results = asyncio.run(search(catalog, "open fr"))  # type: ignore[arg-type]
    assert results.documents[0].code == "S02.91XB"
    assert results.asked == ("open", "fracture")  # not "front", which more entries hold
    for typed, asked in (("bilat pe", ("bilateral", "pe")), ("fracture of", ("fracture",)),
                         ("epigastric zq", ("epigastric", "zq"))):
        assert asyncio.run(search(catalog, typed)).asked == asked  # type: ignore[arg-type]


def test_two_letters_some_entries_hold_are_a_word_begun_only_while_typing() -> None:
    """In a search box, "fracture of le" is on its way to "left": entries hold "le"
    (lupus erythematosus), but none with "fracture". Sent whole, it means what it says;
    and while typing, where entries hold it with the other words ("discoid le"), it is
    still the abbreviation."""
    docs = [
        CodeDocument("ICD10CM", "S72.92XA", "Unspecified fracture of left femur, initial "
                     "encounter", True, "code", chapter="19"),
        CodeDocument("ICD10CM", "S72.91XA", "Unspecified fracture of right femur, initial "
                     "encounter", True, "code", chapter="19"),
        CodeDocument("ICD10CM", "S32.9XXA", "Fracture of unspecified parts of lumbosacral "
                     "spine and pelvis, initial encounter", True, "code", chapter="19"),
        CodeDocument("ICD10CM", "I50.1", "Left ventricular failure, unspecified", True, "code"),
        CodeDocument("ICD10CM", "M32.9", "Systemic lupus erythematosus, unspecified", True,
                     "code", terms=("sle", "le")),
        CodeDocument("ICD10CM", "L93.0", "Discoid lupus erythematosus", True, "code",
                     terms=("discoid le",)),
        CodeDocument("ICD10CM", "L98.9", "Disorder of the skin, unspecified", True, "code",
                     terms=("lesion of skin",)),
    ]
    catalog = Catalog(WorstOrderIndex(docs))
    typing = asyncio.run(search(catalog, "fracture of le", typing=True))  # type: ignore[arg-type]
    assert typing.asked == ("fracture", "left")
    assert typing.documents[0].code == "S72.92XA"
    assert asyncio.run(search(catalog, "fracture of le")).asked == ("fracture", "le")  # type: ignore[arg-type]
    discoid = asyncio.run(search(catalog, "discoid le", typing=True))  # type: ignore[arg-type]
    assert discoid.asked == ("discoid", "le")
    assert discoid.documents[0].code == "L93.0"


def test_a_stage_run_into_its_letters_is_read_as_two_words() -> None:
    docs = [
        CodeDocument("ICD10CM", "N18.31", "Chronic kidney disease, stage 3a", True, "code",
                     terms=("ckd",)),
        CodeDocument("ICD10CM", "N18.32", "Chronic kidney disease, stage 3b", True, "code",
                     terms=("ckd",)),
    ]
    assert first(docs, "ckd3b") == ["N18.32"]


def test_warming_reads_the_query_word_lists_before_the_first_search() -> None:
    """The lexicon's names of injuries, pregnancy and the rest take a fifth of a second
    to derive, and the common English words a tenth: a serving process reads them as it
    starts, not in someone's search."""
    from services.lookup import lexicon
    from services.lookup.search import english, intent
    from services.lookup.search.engine import warm

    lexicon.default_lexicon.cache_clear()
    intent._pregnancy_names.cache_clear()
    english.common_words.cache_clear()
    docs = [CodeDocument("ICD10CM", "R51.9", "Headache, unspecified", True, "code")]
    asyncio.run(warm(Catalog(WorstOrderIndex(docs))))  # type: ignore[arg-type]
    assert lexicon.default_lexicon.cache_info().currsize == 1
    assert intent._pregnancy_names.cache_info().currsize == 1
    assert english.common_words.cache_info().currsize == 1


def test_words_no_entry_holds_do_not_use_up_the_pairs_a_sentence_is_searched_by() -> None:
    # "months" and "ago" are in no entry: pairs with them find nothing, and before they
    # were sent first, "heart attack" (two common words) came too late to be sent.
    crowd = [
        CodeDocument("ICD10CM", f"Z{i:03d}", f"{word} {i}", True, "code")
        for i, word in zip(range(700), itertools.cycle(
            ["Heart murmur", "Panic attack", "Heart block", "Asthma attack",
             "Three vessel disease", "Follow up exam", "Fed up"]))
    ]
    wanted = CodeDocument("ICD10CM", "I25.2", "Old myocardial infarction", True, "code",
                          terms=("previous heart attack",))
    text = "had a heart attack three months ago and this is my follow up"
    assert first([*crowd, wanted], text) == ["I25.2"]


def test_the_condition_a_sentence_names_is_searched_for_by_itself() -> None:
    # Each other word of the sentence is in many entries, and "seizure" with any of them
    # in none: the entry named is found by its name alone.
    crowd = [
        CodeDocument("ICD10CM", f"Z{i:03d}", f"{word} {i}", True, "code")
        for i, word in zip(range(700), itertools.cycle(
            ["Son of a parent", "First degree burn", "Problem at park", "Time zone change"]))
    ]
    wanted = CodeDocument("ICD10CM", "R56.9", "Unspecified convulsions", True, "code",
                          terms=("Seizure NOS",))
    text = "my son had a seizure for the first time at the park"
    assert first([*crowd, wanted], text) == ["R56.9"]


def test_the_entry_a_condition_names_alone_is_found_among_many_holding_its_name() -> None:
    # Hundreds of entries hold "hives", none "hives" with "all" or "over": "Hives NOS"
    # (what hives alone means) is asked for by name, as the words alone would be.
    crowd = [CodeDocument("ICD10CM", f"L{600 + i}", f"Hives of kind {i}", True, "code")
             for i in range(300)]
    crowd += [CodeDocument("ICD10CM", f"Z{i:03d}", f"Over the counter drug {i}", True, "code")
              for i in range(300)]
    wanted = CodeDocument("ICD10CM", "L50.9", "Urticaria, unspecified", True, "code",
                          terms=("Hives NOS",))
    assert first([*crowd, wanted], "hives all over") == ["L50.9"]


def test_the_entries_marked_the_default_are_asked_for_a_few_and_not_counted() -> None:
    # A word's default entries ("Hives NOS") are a few: asking for a page of them, or
    # counting all that match, costs each first-time search without changing its answer.
    crowd = [CodeDocument("ICD10CM", f"L{600 + i}", f"Hives of kind {i}", True, "code",
                          terms=(f"Hives NOS of kind {i}",)) for i in range(300)]
    asked: list[QueryPlan] = []

    class Recording(WorstOrderIndex):
        async def candidates(self, plan: QueryPlan) -> Candidates[CodeDocument]:
            asked.append(plan)
            return await super().candidates(plan)

    asyncio.run(search(Catalog(Recording(crowd)), "hives"))  # type: ignore[arg-type]
    defaults = [plan for plan in asked if plan.words[:1] == ("nos",)]
    assert defaults and all(
        not plan.count and plan.window <= gathering._DEFAULTS for plan in defaults
    )
    assert any(plan.count and plan.window > gathering._DEFAULTS for plan in asked)


def test_an_entry_needing_a_seventh_character_brings_its_codes_onto_the_page() -> None:
    """An injury's code is its entry's with an encounter added: the entry alone is no
    code to report. A backend's best few may hold the entry and not its codes (whose
    titles are longer), so they are fetched by code."""
    crowd = [CodeDocument("ICD10CM", f"S99.{i:03d}", f"Wrist thing {i}", True, "code")
             for i in range(300)]
    entry = CodeDocument("ICD10CM", "S63.502", "Unspecified sprain of left wrist", False,
                         "code", terms=("twisted wrist",))
    initial = CodeDocument("ICD10CM", "S63.502A", "Unspecified sprain of left wrist, "
                           "initial encounter", True, "code")
    later = CodeDocument("ICD10CM", "S63.502D", "Unspecified sprain of left wrist, "
                         "subsequent encounter", True, "code")
    results = asyncio.run(search(Catalog(WorstOrderIndex([*crowd, entry, initial, later])),  # type: ignore[arg-type]
                                 "twisted wrist"))
    codes = [d.code for d in results.documents]
    assert codes[:2] == ["S63.502", "S63.502A"]


def test_seventh_characters_are_fetched_only_for_entries_whose_codes_are_not_listed() -> None:
    entry = CodeDocument("ICD10CM", "T18.9", "Foreign body of alimentary tract", False, "code")
    code = CodeDocument("ICD10CM", "T18.9XXA", "Foreign body of alimentary tract, initial "
                        "encounter", True, "code")
    billable = CodeDocument("ICD10CM", "K21.9", "Reflux", True, "code")
    index = WorstOrderIndex([entry, code, billable])
    plan = QueryPlan(words=("foreign",))
    fetched = asyncio.run(gathering.encounters(index, plan, [entry, billable], [entry]))  # type: ignore[arg-type]
    assert fetched == [(entry, [code])]
    assert asyncio.run(gathering.encounters(index, plan, [entry], [entry, code])) == []  # type: ignore[arg-type]


def test_a_sentence_is_searched_by_its_neighbouring_words_before_others() -> None:
    """A sentence's phrases are its neighbours: "blacked out" is searched for before
    pairs of rarer words strewn apart, though "out" is common."""
    rare = "alpha bravo charlie delta echo foxtrot golf".split()
    docs = [CodeDocument("ICD10CM", f"A{i:02d}", f"{w.title()} thing", True, "code")
            for i, w in enumerate(rare)]
    docs += [CodeDocument("ICD10CM", f"Z{i:03d}", f"Out thing {i}", True, "code")
             for i in range(700)]
    wanted = CodeDocument("ICD10CM", "S06.0X1A", "Concussion with loss of consciousness",
                          True, "code", terms=("blacked out",))
    text = "alpha bravo charlie delta blacked out echo foxtrot golf"
    results = asyncio.run(search(Catalog(WorstOrderIndex([*docs, wanted])), text))  # type: ignore[arg-type]
    assert "S06.0X1A" in [d.code for d in results.documents]


def test_a_later_encounter_alone_brings_its_initial_one() -> None:
    """A sequela found without the initial encounter (its terms alike): the query named
    neither, and the initial one is what is meant."""
    sequela = CodeDocument("ICD10CM", "S52.532S", "Colles' fracture of left radius, sequela",
                           True, "code", chapter="19")
    initial = CodeDocument("ICD10CM", "S52.532A", "Colles' fracture of left radius, initial "
                           "encounter for closed fracture", True, "code", chapter="19")
    index = WorstOrderIndex([sequela, initial])
    plan = QueryPlan(words=("colles",))
    assert asyncio.run(gathering.encounters(index, plan, [sequela], [sequela])) == [  # type: ignore[arg-type]
        (sequela, [initial])
    ]
    assert asyncio.run(gathering.encounters(index, plan, [initial], [initial])) == []  # type: ignore[arg-type]


def test_a_query_asked_again_is_answered_from_the_cache_without_being_read_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from services.lookup.search import engine
    from services.shared.search.cache import SearchCache

    reads: list[str] = []
    analyze = engine.analyze

    def counted(text: str, **options: object) -> QueryPlan:
        reads.append(text)
        return analyze(text, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "analyze", counted)
    docs = [CodeDocument("ICD10CM", "J45.909", "Unspecified asthma, uncomplicated", True, "code")]
    catalog = Catalog(WorstOrderIndex(docs))
    cache: SearchCache[engine.Results] = SearchCache()
    text = "asthma read once"  # a text no other test searches: readings are kept per process

    async def twice() -> list[list[str]]:
        return [[d.code for d in (await search(catalog, text, cache=cache)).documents]  # type: ignore[arg-type]
                for _ in range(2)]

    first_answer, second_answer = asyncio.run(twice())
    assert first_answer == second_answer == ["J45.909"]
    assert reads == [text]


@dataclass
class WindowsAsked(WorstOrderIndex):
    """Records each plan's window; counts no facets."""

    windows: list[int] = field(default_factory=list)

    async def candidates(self, plan: QueryPlan) -> Candidates[CodeDocument]:
        self.windows.append(plan.window)
        return await super().candidates(plan)

    async def facets(self, plan: QueryPlan) -> Facets:
        return Facets()


_HYPERTENSION = [CodeDocument("ICD10CM", "I10", "Essential (primary) hypertension", True, "code")]


def test_a_search_ranks_as_many_of_the_backends_best_matches_as_it_is_told() -> None:
    """Each backend's figure (lookup.runtime.search_candidates): the engine asks for that
    many, whatever the page."""
    for told in (120, 150):
        index = WindowsAsked(_HYPERTENSION)
        found = asyncio.run(search(Catalog(index), "hypertension",  # type: ignore[arg-type]
                                   candidates=told))
        assert [d.code for d in found.documents] == ["I10"]
        assert index.windows[0] == told


def test_lookups_searches_rank_the_candidates_it_was_made_with(tmp_path: Path) -> None:
    app = CodeSets(env=Settings(data_dir=tmp_path).event_store_env("lookup"))
    index = WindowsAsked(_HYPERTENSION)
    lookup = LocalLookup(app, Catalog(index), candidates=120)  # type: ignore[arg-type]
    page = asyncio.run(lookup.search_codes("hypertension"))
    assert [c.code for c in page.items] == ["I10"]
    assert index.windows == [120]
    asyncio.run(lookup.search_facets("hypertension"))  # the same plans, to count
    assert index.windows == [120, 120]


def test_a_plan_without_the_common_words_is_asked_for_every_match_or_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Leaving the common words out is worth it only if the backend then returns every
    entry holding the others; when more match, it is asked again with every word, and
    what it found first is not read (QueryPlan.whole). (Here a word in more than 100
    texts is common, and a page's window is 60.)"""
    monkeypatch.setattr(gathering, "_COMMON", 100)
    fingers = [CodeDocument("ICD10CM", f"S61.{i:03}A", f"Dog bite of finger {i}", True, "code",
                            chapter="19") for i in range(70)]
    hands = [CodeDocument("ICD10CM", f"M79.{i:03}", f"Pain in right hand {i}", True, "code")
             for i in range(110)]
    bite = CodeDocument("ICD10CM", "S61.451A", "Dog bite of right hand", True, "code",
                        chapter="19")
    asked: list[tuple[QueryPlan, int]] = []

    class Recording(WorstOrderIndex):
        async def candidates(self, plan: QueryPlan) -> Candidates[CodeDocument]:
            found = await super().candidates(plan)
            asked.append((plan, len(found.documents)))
            return found

    results = asyncio.run(search(Catalog(Recording([*fingers, *hands, bite])),  # type: ignore[arg-type]
                                 "dog bite right hand", candidates=1))
    assert results.documents[0].code == "S61.451A"
    (first, read), (second, _) = asked[:2]  # without the common words, then with them
    assert first.words == ("dog", "bite") and first.whole and read == 0
    assert set(second.words) == {"dog", "bite", "right", "hand"} and not second.whole
