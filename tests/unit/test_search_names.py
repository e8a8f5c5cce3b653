"""A condition a query names one way, found where a combination code names it another:
the two names are the "NOS" terms of one entry (services/lookup/search/names.py)."""

from __future__ import annotations

from services.lookup.lexicon import Lexicon
from services.lookup.search.documents import CodeDocument
from services.lookup.search.names import Names
from tests.unit.test_search_plans import first

ANGIOPATHY = CodeDocument(
    "ICD10CM", "I73.9", "Peripheral vascular disease, unspecified", True, "code",
    terms=("Peripheral angiopathy NOS", "pvd NOS", "Spasm of artery"),
)
COMBINATION = CodeDocument(
    "ICD10CM", "E11.51",
    "Type 2 diabetes mellitus with diabetic peripheral angiopathy without gangrene", True,
    "code", terms=("dm2", "t2dm"),
)
DIABETES = CodeDocument(
    "ICD10CM", "E11.9", "Type 2 diabetes mellitus without complications", True, "code",
    terms=("dm2 NOS", "t2dm NOS"),
)


def test_the_nos_terms_of_one_condition_name_it_alike() -> None:
    names = Names.of([ANGIOPATHY, COMBINATION, DIABETES])
    renamed = [r.words for r in names.readings(("dm2", "pvd"))]
    assert ("dm2", "peripheral", "angiopathy") in renamed
    assert ("t2dm", "pvd") in renamed
    # Where the other name is, so the ranker can ask an entry for all of it.
    reading = next(r for r in names.readings(("dm2", "pvd")) if r.words[-1] == "angiopathy")
    assert list(reading.name) == [1, 2]


def test_only_a_part_of_a_query_is_named_again_and_only_by_plain_names() -> None:
    listing = CodeDocument(
        "ICD10CM", "I50.9", "Heart failure, unspecified", True, "code",
        terms=("Cardiac, heart or myocardial failure NOS", "chf NOS", "heart failure NOS"),
    )
    procedure = CodeDocument(
        "ICD10PCS", "0DTJ4ZZ", "Resection of Appendix, Percutaneous Endoscopic Approach",
        True, "code", terms=("Resection NOS", "appendectomy NOS"),
    )
    names = Names.of([listing, procedure])
    assert names.readings(("chf",)) == []  # the whole query finds I50.9 itself
    renamed = [r.words for r in names.readings(("chf", "afib"))]
    assert renamed == [("heart", "failure", "afib")]  # not the comma-separated listing
    assert names.readings(("appendectomy", "open")) == []  # PCS terms name operations


def test_a_combination_named_otherwise_is_found_and_ranked_first() -> None:
    assert first([ANGIOPATHY, COMBINATION, DIABETES], "dm2 w pvd") == ["E11.51"]


def test_another_name_never_outranks_an_entry_holding_the_words_as_typed() -> None:
    """Renaming is for when no entry holds every word: "oa r knee" is M17.11, though
    "arthritis" is another name of "oa" and names many other knees."""
    oa = CodeDocument(
        "ICD10CM", "M19.90", "Unspecified osteoarthritis, unspecified site", True, "code",
        terms=("oa NOS", "arthritis NOS"),
    )
    knee = CodeDocument(
        "ICD10CM", "M17.11", "Unilateral primary osteoarthritis, right knee", True, "code",
        terms=("oa",),
    )
    other = CodeDocument(  # a combination code, which another name could find
        "ICD10CM", "M05.761", "Rheumatoid arthritis with rheumatoid factor of right knee "
        "without organ or systems involvement", True, "code",
    )
    assert first([oa, knee, other], "oa right knee") == ["M17.11"]


def test_another_name_finds_combination_codes_not_entries_that_list_both_names() -> None:
    """Two symptoms are coded apart: "sore throat and fever" is not the syndrome whose
    name happens to list pharyngitis (another name of sore throat) and fever."""
    throat = CodeDocument(
        "ICD10CM", "J02.9", "Acute pharyngitis, unspecified", True, "code",
        terms=("Pharyngitis NOS", "sore throat NOS"),
    )
    syndrome = CodeDocument(
        "ICD10CM", "M04.8", "Other autoinflammatory syndromes", True, "code",
        terms=("Periodic fever, aphthous stomatitis, pharyngitis, and adenopathy syndrome",),
    )
    assert first([throat, syndrome], "sore throat and fever") == ["J02.9"]


def test_the_other_name_must_be_written_whole_not_strewn_over_texts() -> None:
    """"Blood infection" is another name of sepsis; an entry saying "blood in urine" and
    "bladder infection" does not say it."""
    sepsis = CodeDocument(
        "ICD10CM", "A41.9", "Sepsis, unspecified organism", True, "code",
        terms=("Sepsis NOS", "blood infection NOS"),
    )
    cystitis = CodeDocument(
        "ICD10CM", "N30.01", "Acute cystitis with hematuria", True, "code",
        terms=("uti with blood", "blood in urine", "bladder infection"),
    )
    assert first([sepsis, cystitis], "uti w sepsis") == ["A41.9"]


PSORIASIS = CodeDocument(
    "ICD10CM", "L40.9", "Psoriasis, unspecified", True, "code", terms=("psoriasis NOS",)
)
FLARE = CodeDocument(
    "ICD10CM", "J45.901", "Unspecified asthma with (acute) exacerbation", True, "code",
    terms=("flare up", "asthma flare"),
)


def test_the_words_of_a_query_that_name_a_condition_are_known_longest_first() -> None:
    names = Names.of([PSORIASIS, ANGIOPATHY, DIABETES])
    assert names.named(("psoriasis", "keeps", "flaring", "elbows")) == ("psoriasis",)
    assert names.named(("peripheral", "angiopathy", "legs")) == ("peripheral", "angiopathy")
    assert names.named(("legs", "hurt")) == ()


def test_a_sentence_naming_a_condition_finds_it_before_entries_holding_its_other_words() -> None:
    """Two of the sentence's words are an asthma flare's; the condition it names is the
    psoriasis. Written as a note, no word counts more than another."""
    docs = [FLARE, PSORIASIS]
    assert first(docs, "my psoriasis keeps flaring up on my elbows") == ["L40.9"]
    assert first(docs, "psoriasis flaring up elbows") == ["J45.901"]


SWELLING = CodeDocument(
    "ICD10CM", "R22.31", "Localized swelling, mass and lump, right upper limb", True, "code",
    chapter="18", terms=("swelling NOS", "swollen arm"),
)
STING = CodeDocument(
    "ICD10CM", "T63.441A", "Toxic effect of venom of bees, accidental (unintentional), initial "
    "encounter", True, "code", chapter="19", terms=("bee sting", "stung by a bee"),
)
BURN = CodeDocument(
    "ICD10CM", "T30.0", "Burn of unspecified body region, unspecified degree", True, "code",
    chapter="19", terms=("burn NOS",),
)


def test_symptoms_and_the_burning_sensation_are_named_but_not_as_diagnoses() -> None:
    names = Names.of([PSORIASIS, SWELLING, BURN])
    assert names.named(("psoriasis", "swelling")) == ("psoriasis", "swelling")
    assert names.named(("psoriasis", "swelling"), diagnoses=True) == ("psoriasis",)
    assert names.named(("skin", "burning")) == ()  # a sensation, not "Burn NOS"
    assert names.named(("burn", "arm")) == ("burn",)


def test_a_sentence_naming_a_symptom_of_what_happened_finds_what_happened() -> None:
    """The swelling is the sting's: symptoms count no more than the other words."""
    docs = [SWELLING, STING]
    assert first(docs, "a bee stung me and my right arm is swelling") == ["T63.441A"]


def test_what_people_call_a_named_condition_names_it_too() -> None:
    """"chickenpox" is the lexicon's name for what "Varicella NOS" marks; a common word
    the lexicon also gives ("spots") is no name: it is said of anything."""
    lexicon = Lexicon({"varicella without complication": ["chickenpox", "spots"]})
    varicella = CodeDocument("ICD10CM", "B01.9", "Varicella without complication", True,
                             "code", chapter="1", terms=("Varicella NOS",))
    names = Names.of([varicella], lexicon)
    assert names.named(("daughter", "chickenpox", "spots", "belly")) == ("chickenpox",)
    assert Names.of([varicella]).named(("daughter", "chickenpox", "spots")) == ()
