"""The lexicon (what people type, written into the index) and the query side of search:
text folding, spelling correction and the ranking rules that use the lexicon's marks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.lookup.lexicon import DATA, Lexicon, default_lexicon
from services.lookup.search.analysis import analyze, code_among, code_in, codes_listed
from services.lookup.search.documents import CodeDocument
from services.lookup.search.matching import Query
from services.lookup.search.scoring import rank
from services.lookup.search.search_readings import read
from services.lookup.search.spelling import Vocabulary
from services.lookup.search.wording import (
    STOPWORDS,
    detail_stems,
    name_key,
    query_tokens,
    query_words,
)
from services.shared.search.text import stem, words

# -- the shipped lexicon ---------------------------------------------------------------


def test_the_shipped_lexicon_loads_and_is_broad() -> None:
    data = json.loads(DATA.read_text(encoding="utf-8"))
    groups = data["concepts"]
    assert len(groups) >= 10  # every body system, symptoms, injuries, procedures...
    synonyms = [s for group in groups.values() for names in group.values() for s in names]
    assert len(synonyms) > 5000
    assert all(isinstance(s, str) and s.strip() for s in synonyms)
    assert default_lexicon().size > 1500


@pytest.mark.parametrize(
    ("title", "wanted"),
    [
        ("Acute myocardial infarction, unspecified", {"heart attack NOS", "ami NOS"}),
        ("Essential (primary) hypertension", {"htn NOS", "high blood pressure NOS"}),
        ("Heart failure, unspecified", {"chf NOS"}),
        ("Type 2 diabetes mellitus with hyperglycemia", {"t2dm", "dm2", "uncontrolled"}),
        ("Gastro-esophageal reflux disease without esophagitis", {"gerd NOS"}),
        ("Calculus of kidney", {"kidney stone NOS"}),
        ("Tinea pedis", {"athletes foot"}),
        # The code set's "medicaments" are what everyone else calls medications.
        ("Hypothyroidism due to medicaments and other exogenous substances", {"medication"}),
        # The code set's regions, as a limb is an arm or a leg: the trunk is one's back.
        ("Benign lipomatous neoplasm of skin and subcutaneous tissue of trunk",
         {"back", "chest"}),
    ],
)
def test_titles_get_lay_words_and_shorthand(title: str, wanted: set[str]) -> None:
    terms = set(default_lexicon().terms("ICD10CM", title))
    assert wanted <= terms


def test_inclusion_terms_come_first_and_nothing_twice() -> None:
    terms = default_lexicon().terms(
        "ICD10CM", "Cerebral infarction, unspecified", ("Stroke NOS",)
    )
    assert terms[0] == "Stroke NOS"
    assert "cva NOS" in terms
    assert len({t.lower() for t in terms}) == len(terms)
    assert "stroke" not in terms  # "Stroke NOS" says it already


def test_concepts_match_what_a_title_states() -> None:
    lexicon = default_lexicon()
    # Negated: no fracture synonyms for osteoporosis *without* fracture.
    title = "Age-related osteoporosis without current pathological fracture"
    terms = lexicon.terms("ICD10CM", title)
    assert "thin bones" in terms and "broken" not in terms
    # ... but named as ruled out, as the title says it, and the ranker reads it so.
    assert "without broken" in terms
    concussion = lexicon.terms("ICD10CM", "Concussion without loss of consciousness")
    assert "without loc" in concussion and "loc" not in concussion
    assert "loc" in lexicon.terms("ICD10CM", "Concussion with loss of consciousness")
    # Left open: "not specified as acute or chronic" is neither.
    assert "flare" not in lexicon.terms("ICD10CM", "Bronchitis, not specified as acute or chronic")
    # Words, not Porter stems: "prostatitis" is not every prostate.
    assert "prostate infection" not in lexicon.terms("ICD10CM", "Malignant neoplasm of prostate")


def test_pcs_body_parts_are_also_named_as_people_name_them() -> None:
    lexicon = default_lexicon()
    thigh = "Drainage of Right Upper Leg Subcutaneous Tissue and Fascia, Open Approach"
    assert "thigh" in lexicon.terms("ICD10PCS", thigh)
    toe = "Detachment at Right 1st Toe, Complete, Open Approach"
    assert {"great toe", "big toe"} <= set(lexicon.terms("ICD10PCS", toe))
    arm = "Detachment at Left Upper Arm, High, Open Approach"
    assert "above elbow amputation" in lexicon.terms("ICD10PCS", arm)


def test_pcs_qualifiers_and_scopes_are_named_as_surgeons_name_them() -> None:
    lexicon = default_lexicon()

    def terms(title: str) -> set[str]:
        return set(lexicon.terms("ICD10PCS", title))

    graft = "Replacement of Left Lower Leg Skin with Autologous Tissue Substitute, {}, External "
    # A split-thickness graft is PCS's partial thickness, not every autograft.
    assert "split thickness skin graft" in terms(graft.format("Partial Thickness"))
    assert "split thickness skin graft" not in terms(graft.format("Full Thickness"))
    assert "full thickness skin graft" in terms(graft.format("Full Thickness"))
    assert "fasciotomy" in terms(
        "Division of Right Lower Leg Subcutaneous Tissue and Fascia, Open Approach")
    # Whatever is done through a hysteroscope is hysteroscopic; the look alone is what
    # "hysteroscopy" means by itself.
    assert {"hysteroscopy", "endometrial biopsy"} <= terms(
        "Extraction of Endometrium, Via Natural or Artificial Opening Endoscopic, Diagnostic")
    assert "hysteroscopy NOS" in terms(
        "Inspection of Uterus and Cervix, Via Natural or Artificial Opening Endoscopic")
    # A device is named whatever is done with it: a fracture nailed is a reposition.
    assert "intramedullary nail" in terms(
        "Reposition Left Femoral Shaft with Intramedullary Internal Fixation Device, Open Approach")


def test_a_name_given_to_a_specific_concept_is_that_concepts_only() -> None:
    lexicon = Lexicon({
        "osteoporosis": ["thin bones", "brittle bones"],
        "age related osteoporosis": ["thin bones"],
    })
    assert "thin bones" in lexicon.terms("ICD10CM", "Age-related osteoporosis")
    assert lexicon.terms("ICD10CM", "Localized osteoporosis") == ("brittle bones",)


def test_a_family_is_what_its_condition_means_when_its_kind_is_not_said() -> None:
    # Diabetes of unstated type is type 2 (the coding guidelines): every type 2 code
    # says so, no type 1 code does.
    lexicon = default_lexicon()
    assert "diabetes NOS" in lexicon.terms(
        "ICD10CM", "Type 2 diabetes mellitus with diabetic chronic kidney disease"
    )
    assert "diabetes NOS" not in lexicon.terms(
        "ICD10CM", "Type 1 diabetes mellitus with diabetic chronic kidney disease"
    )


def test_a_procedure_name_is_given_to_procedures_only() -> None:
    # The procedure groups' "detachment" is an amputation, "delivery products
    # conception" a normal delivery: not a retina's detachment, nor a hemorrhage after
    # a delivery whose inclusion term names retained products of conception.
    lexicon = default_lexicon()
    assert "amputation" in lexicon.terms("ICD10PCS", "Detachment at Right Foot, Open Approach")
    assert "amputation" not in lexicon.terms(
        "ICD10CM", "Type 2 diabetes mellitus with proliferative diabetic retinopathy with "
        "traction retinal detachment involving the macula, right eye"
    )
    assert "nsvd" not in lexicon.terms(
        "ICD10CM", "Delayed and secondary postpartum hemorrhage",
        ["Retained products of conception NOS, following delivery"],
    )
    # A concept also in a group of conditions still names them.
    assert "heart valve" in lexicon.terms("ICD10CM", "Rheumatic mitral valve disease, unspecified")


def test_the_names_of_the_concepts_needing_a_word() -> None:
    lexicon = Lexicon({
        "fracture": ["fx", "broken bone"],
        "foreign body": ["fb"],
        "sprain ankle": ["rolled ankle"],
        "ankle pain": ["sore ankle"],
    })
    assert sorted(lexicon.names_needing(["fractures", "sprain", "foreign"])) == [
        "broken bone", "fb", "fx", "rolled ankle",
    ]


def test_a_general_name_reaches_every_title_of_the_concept() -> None:
    # "pinched nerve" is any radiculopathy, not only one from a disc; "sah" any
    # subarachnoid hemorrhage, traumatic too.
    lexicon = default_lexicon()
    assert "pinched nerve" in lexicon.terms("ICD10CM", "Radiculopathy, cervical region")
    assert "sah" in lexicon.terms(
        "ICD10CM", "Traumatic subarachnoid hemorrhage without loss of consciousness"
    )
    assert "colonoscopy" in lexicon.terms(
        "ICD10PCS", "Excision of Transverse Colon, Via Natural or Artificial Opening Endoscopic"
    )


def _axes(*meanings: str, system: str = "D") -> list[dict[str, Any]]:
    names = ("Section", "Body System", "Root Operation", "Body Part", "Approach", "Device",
             "Qualifier")
    return [
        {"axis": axis, "meaning": meaning, "value": system if axis == "Body System" else "0"}
        for axis, meaning in zip(names, meanings, strict=True)
    ]


def test_procedure_names_come_from_the_axes() -> None:
    lexicon = default_lexicon()
    appendix = _axes("Medical and Surgical", "Gastrointestinal System", "Resection", "Appendix",
                     "Percutaneous Endoscopic", "No Device", "No Qualifier")
    terms = lexicon.terms("ICD10PCS", "Resection of Appendix, Percutaneous Endoscopic Approach",
                          details={"axes": appendix})
    assert {"appendectomy NOS", "laparoscopic", "appendix removal", "appy"} <= set(terms)
    biopsy = _axes("Medical and Surgical", "Endocrine System", "Excision", "Thyroid Gland",
                   "Percutaneous", "No Device", "Diagnostic", system="G")
    assert {"Thyroid Gland biopsy", "Thyroid biopsy"} <= set(lexicon.terms(
        "ICD10PCS", "Excision of Thyroid Gland, Percutaneous Approach, Diagnostic",
        details={"axes": biopsy}))


def test_an_ostomy_is_a_bypass_to_the_skin() -> None:
    lexicon = default_lexicon()
    to_skin = _axes("Medical and Surgical", "Gastrointestinal System", "Bypass", "Sigmoid Colon",
                    "Open", "No Device", "Cutaneous")
    joined = _axes("Medical and Surgical", "Gastrointestinal System", "Bypass",
                   "Large Intestine", "Open", "No Device", "Large Intestine")
    assert "colostomy" in lexicon.terms(
        "ICD10PCS", "Bypass Sigmoid Colon to Cutaneous, Open Approach", details={"axes": to_skin})
    assert "colostomy" not in lexicon.terms(
        "ICD10PCS", "Bypass Large Intestine to Large Intestine, Open Approach",
        details={"axes": joined})


def test_a_concept_naming_an_operation_skips_a_device_of_that_name() -> None:
    lexicon = default_lexicon()
    tap = _axes("Medical and Surgical", "Central Nervous System", "Drainage", "Spinal Canal",
                "Percutaneous", "No Device", "Diagnostic", system="0")
    device = _axes("Medical and Surgical", "Central Nervous System", "Removal", "Spinal Canal",
                   "Percutaneous", "Drainage Device", "No Qualifier", system="0")
    assert "lumbar puncture" in lexicon.terms(
        "ICD10PCS", "Drainage of Spinal Canal, Percutaneous Approach, Diagnostic",
        details={"axes": tap})
    assert "lumbar puncture" not in lexicon.terms(
        "ICD10PCS", "Removal of Drainage Device from Spinal Canal, Percutaneous Approach",
        details={"axes": device})


def test_pcs_index_entries_name_the_codes_they_point_to() -> None:
    details = {"index_entries": [
        {"term": "Appendectomy", "text": "see Resection, Appendix 0DTJ"},
        {"term": "Resection", "text": "Appendix 0DTJ"},  # the title's own tree: left out
        {"term": "Colonoscopy", "text": "0DJD8ZZ"},  # the code itself: its default
        {"term": "Gastrectomy", "text": "Vertical (sleeve) see Excision, Stomach 0DB6"},
    ]}
    terms = Lexicon({}).terms("ICD10PCS", "Some title", details=details)
    assert terms == ("Appendectomy", "Colonoscopy NOS", "Gastrectomy, Vertical (sleeve)")


# -- text ------------------------------------------------------------------------------


def test_stems_are_porter_stems_and_irregular_forms_meet() -> None:
    assert [stem(w) for w in ("fractures", "infarction", "hypertensive", "relational")] == [
        "fractur", "infarct", "hypertens", "relat",
    ]
    assert stem("feet") == stem("foot")
    # Past forms meet the titles' nouns: "bitten by a dog" is an "open bite".
    past = [stem(w) for w in ("bitten", "fell", "fallen", "torn")]
    assert past == [stem(w) for w in ("bite", "fall", "fall", "tear")]
    assert stem("i219") == "i219"


def test_queries_spell_out_clinical_notation() -> None:
    assert query_tokens("DM type II w/o complications") == [
        "dm", "type", "2", "without", "complications",
    ]
    assert query_tokens("h/o DVT") == ["history", "of", "dvt"]
    assert query_tokens("opioid use d/o") == ["opioid", "use", "disorder"]
    assert query_tokens("f/u visit") == ["follow", "up", "visit"]
    assert query_tokens("sepsis d/t uti") == ["sepsis", "due", "to", "uti"]
    assert query_tokens("aki 2/2 dehydration") == ["aki", "due", "to", "dehydration"]
    assert query_tokens("bp 2/2/24") == ["bp", "2", "2", "24"]  # a date, not "due to"
    assert query_tokens("anxiety r/t work") == ["anxiety", "due", "to", "work"]  # not "right"
    assert query_tokens("etoh w/d") == ["etoh", "withdrawal"]
    assert query_tokens("h/a w nausea") == ["headache", "w", "nausea"]
    assert query_tokens("I&D abscess") == ["incision", "and", "drainage", "abscess"]
    assert query_tokens("migraine with no aura") == ["migraine", "without", "aura"]
    assert query_tokens("there's no protein in it") == ["without", "protein", "in", "it"]
    assert query_tokens("theres no blood") == ["without", "blood"]
    assert query_tokens("no energy") == ["no", "energy"]  # a complaint, not an absence
    assert query_tokens("the dog bit me") == ["the", "dog", "bitten", "me"]
    assert query_tokens("a bit dizzy") == ["a", "bit", "dizzy"]
    assert query_tokens("had it out last year") == ["had", "it", "out", "year", "ago"]
    assert query_tokens("since my last fall") == ["since", "my", "last", "fall"]
    assert query_tokens("a rash that burns") == ["a", "rash", "that", "burning"]
    assert query_tokens("burns on my arm") == ["burns", "on", "my", "arm"]  # the injuries
    assert query_tokens("my eyes burn") == ["my", "eyes", "burning"]
    assert query_tokens("her skin burns") == ["her", "skin", "burning"]
    assert query_words(("fluid", "on", "the", "knee")) == ("fluid", "knee")
    assert query_words(("a",)) == ("a",)


def test_a_title_states_details_but_not_what_it_leaves_out() -> None:
    assert detail_stems("Type 2 diabetes mellitus without complications") == {
        "2", "diabet", "mellitu",
    }
    assert detail_stems("Gastric ulcer, unspecified as acute or chronic") == {"gastric", "ulcer"}
    assert detail_stems("Essential (primary) hypertension") == {"essenti", "hypertens"}
    # What a clause leaves out ends with the clause, not with the title.
    assert detail_stems("Asthma without status asthmaticus; severe, persistent") == {
        "asthma", "sever", "persist",
    }


@pytest.mark.parametrize("text", [
    "Type 2 diabetes mellitus without complications",
    "Gastric ulcer, unspecified as acute or chronic",
    "Asthma without status asthmaticus; severe, persistent",
    "Essential (primary) hypertension [benign] NOS",
    "Neoplasm of uncertain behavior, not elsewhere classified, of the larynx",
    "Swimmer's ear, unspecified ear",
    # No asides and no clause marks (read from the words alone), one not in ASCII.
    "Ménière's disease of left ear",
    "Other specified disorders of the left inner ear without vertigo",
])
def test_the_ranker_reads_a_text_as_the_wording_rules_do(text: str) -> None:
    reading = read(text)
    assert reading.sequence == tuple(stem(w) for w in words(text) if w not in STOPWORDS)
    assert set(reading.details) == detail_stems(text)
    assert len(reading.details) == len(set(reading.details))
    assert reading.name == name_key(text)
    assert reading.nos == ("nos" in words(text))
    assert set(reading.stems) == {stem(w) for w in words(text)}


def test_a_name_is_the_words_as_typed() -> None:
    assert name_key("Swimmer's ear, unspecified ear") == name_key("swimmers ear")
    assert name_key("on blood thinners") != name_key("blood thinners")


# -- spelling correction ---------------------------------------------------------------

VOCABULARY = Vocabulary([
    "Pneumonia, unspecified organism", "Pneumonitis due to inhalation", "Bronchitis",
    "Bronchus injury", "Bronchus injury", *(f"Migraine, {kind}" for kind in "abcdefghijk"),
    "Thrombophlebitis migrans", "Hemorrhoids", "Sprain of ankle", "Schizophrenia",
    "Type 2 diabetes mellitus", "Diabetic neuropathy", "Asthma", "Neuronal disorder",
    "Cirrhosis of liver", "Crisis", "Crisis", "Crohn's disease", "Chronic", "Chronic",
    "Psoriasis", "Psoriasis", *(f"Esophagitis, {kind}" for kind in "abc"), "Oesophagus",
    *(f"Cancer of {kind}" for kind in "abcdefghijk"), "Cancrum oris",
    "Urinary tract infection", "Infection of bladder", "Tracheitis",
    *(f"Injury of trachea, {kind}" for kind in "abcdefghijk"),
])


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("pnemonia", "pneumonia"),
        ("bronchitus", "bronchitis"),  # one edit beats a commoner word two edits away
        ("hemroids", "hemorrhoids"),
        ("skitzophrenia", "schizophrenia"),
        ("athsma", "asthma"),  # letters swapped
        ("diabetis", "diabetes"),
        ("migrane", "migraine"),  # stems like the rare "migrans"; means the common word
        ("neumonia", "pneumonia"),  # a silent first letter left out: one edit, not three
        ("cirosis", "cirrhosis"),  # sounds alike (doubled letters, silent h) beats "crisis"
        ("chrons", "crohn"),  # and beats the commoner "chronic", two letters away
        ("soriasis", "psoriasis"),
        ("oesophagitis", "esophagitis"),  # British: known only by the stem of "oesophagus"
        ("infecshun", "infection"),  # spelt as it sounds
    ],
)
def test_misspellings_are_corrected_to_index_words(typed: str, meant: str) -> None:
    assert VOCABULARY.correct(typed) == meant


def test_a_last_word_begun_only_by_rare_words_is_a_slip_for_a_common_one() -> None:
    assert VOCABULARY.correct("cancr", as_prefix=True) == "cancer"  # not "cancrum"
    assert VOCABULARY.correct("cancru", as_prefix=True) == "cancru"  # no word a slip away
    assert VOCABULARY.correct("infec", as_prefix=True) == "infec"  # begins a common word
    # Perhaps still being typed ("tracheitis"): only a letter left out is a slip.
    assert VOCABULARY.correct("trachei", as_prefix=True) == "trachei"  # not "trachea"


@pytest.mark.parametrize("word", ["pneumonia", "sprained", "cad", "dm2", "e119", "zzzzzzzz"])
def test_known_short_coded_and_hopeless_words_stay(word: str) -> None:
    assert VOCABULARY.correct(word) == word


def test_an_everyday_word_stays_though_a_common_word_is_a_slip_away() -> None:
    # "shake" stems like the rare "shaking" (tremor), one letter from the common "snake".
    vocabulary = Vocabulary(["Tremor, shaking", *(f"Snake venom, {n}" for n in range(30))])
    assert vocabulary.correct("shake") == "shake"


def test_a_regular_form_of_an_indexed_word_stays_though_a_common_word_is_a_slip_away() -> None:
    # "fainted" stems like the rare "fainting", two edits from the common "failed".
    vocabulary = Vocabulary(["Fainting", *(f"Failed procedure {n}" for n in range(40)),
                             "Erythema migrans", *(f"Migraine {n}" for n in range(40))])
    assert vocabulary.correct("fainted") == "fainted"
    # A misspelling that only stems like a rare word is still corrected.
    assert vocabulary.correct("migrane") == "migraine"


def test_a_word_titles_hyphenate_is_read_as_its_parts_when_typed_as_one() -> None:
    vocabulary = Vocabulary(["Pre-existing hypertension", *(["Persisting cough"] * 20)])
    assert vocabulary.split("preexisting") == ("pre", "existing")  # not "persisting"
    assert vocabulary.split("persisting") == ("persisting",)


def test_stopwords_are_never_corrected_into_words_searched_for() -> None:
    # "complains" is dropped as filler; corrected first, it would be searched for.
    vocabulary = Vocabulary(["Chief complaint", "Complaint of pain", "Homeless", "Homeless"])
    assert vocabulary.correct("complains") == "complains"
    # Nor everyday words a letter from an indexed one: "sad and hopeless" is not homeless.
    assert vocabulary.correct("hopeless") == "hopeless"


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("E11,9", "E119"),  # a comma for the dot
        ("ICD-10 I50.9", "I509"),  # the code set named first
        ("icd10cm: e11.9", "E119"),
        ("ODTJ4ZZ", "0DTJ4ZZ"),  # ICD-10-PCS has no letter O: a zero
        ("1OE0XZZ", "10E0XZZ"),
        ("024.419", "O24419"),  # no ICD-10-CM code starts with a zero, no PCS code has a dot
        ("O80", "O80"),
        ("024", "024"),  # a PCS table as typed
        ("I1O", "I10"),  # no ICD-10-CM code has an O after its first letter
        ("e11.o", "E110"),
        ("what is the icd 10 code for e119?", "E119"),  # words saying a code follows
        ("codeine", None),
        ("s72 001a", "S72001A"),  # pieces of one code
        ("the 5th toe", None),  # an ordinal and a word are not a code
        ("I10 htn", None),  # a code and a word: words, not a code
        ("2nd", None),
        ("cpt 99213", "99213"),
        ("HCPCS code J1100", "J1100"),
        ("dx E11.9", "E119"), ("diagnosis code E11.9", "E119"), ("px 0dtj4zz", "0DTJ4ZZ"),
        # Pasted with quotes or brackets, or with a decimal comma.
        ("'E11.9'", "E119"), ('"e11.9"', "E119"), ("(E11.9)", "E119"), ("E11.9;", "E119"),
        ("[e119]", "E119"), ("“E11.9”", "E119"), ("#E11.9", "E119"), ("E11,9", "E119"),
    ],
)
def test_codes_are_read_however_they_are_typed(typed: str, code: str | None) -> None:
    assert code_in(typed) == code


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("0DTJ4ZZ appendectomy", "0DTJ4ZZ"),
        ("is S72.001A billable", "S72001A"),
        ("E11.65 diabetes", "E1165"),
        ("I10 htn", None),  # no dot: as likely a word
        ("co2 retention", None),
        ("b12 deficiency", None),
        ("covid19 vaccine", None),  # seven characters, but PCS has no O or I
        ("E11.9 and E78.5 together", None),  # two codes among words: neither is the key
    ],
)
def test_a_code_no_word_looks_like_is_read_among_words(typed: str, code: str | None) -> None:
    assert code_among(typed) == code


@pytest.mark.parametrize(
    ("typed", "codes"),
    [
        ("E11.9, I10, E78.5", ("e11.9", "i10", "e78.5")),
        ("dx: e119 i10", ("e119", "i10")),
        ("0DTJ4ZZ; 0DTJ0ZZ", ("0dtj4zz", "0dtj0zz")),
        ("J1100 99213 0042T", ("j1100", "99213", "0042t")),
        ("s72 001a", ()),  # pieces of one code
        ("E11.9", ()),  # one code
        ("I10 htn", ()),  # a code and a word
        ("type 2 diabetes", ()),
    ],
)
def test_a_list_of_codes_is_read_as_its_codes(typed: str, codes: tuple[str, ...]) -> None:
    assert codes_listed(typed) == codes


EVERYDAY_VOCABULARY = Vocabulary([
    "Main", "Main", "Main", "Thrown from horse", "Filling defect", "Conversion disorder",
    "Bulimia nervosa", "Cooing", "Cooing",
])


# "coming" is "come" (listed) in another form: not "cooing".
@pytest.mark.parametrize("word", ["making", "killing", "throw", "throwing", "myself", "coming"])
def test_everyday_words_are_not_corrected_into_index_words(word: str) -> None:
    # "making myself throw up" is not "main myself thrown up"
    assert EVERYDAY_VOCABULARY.correct(word) == word


def test_common_english_words_are_kept_and_rare_ones_still_corrected() -> None:
    vocabulary = Vocabulary([
        *(["Grey matter"] * 5), *(["Battery ingestion"] * 5), *(["Inner ear"] * 5),
        "Hyperplasia of prostate", "Acute myocardial infarction", "Plantar fasciitis",
    ])
    # Spelt right, a sentence's everyday words are meant: "greasy food", "after dinner".
    for word in ("greasy", "better", "dinner"):
        assert vocabulary.correct(word) == word
    # Rare words that are also slips of clinical ones are still read as the slips.
    assert vocabulary.correct("prostrate") == "prostate"
    assert vocabulary.correct("infraction") == "infarction"
    assert vocabulary.correct("planter") == "plantar"


def test_a_correction_takes_a_slip_or_two_not_another_word() -> None:
    assert EVERYDAY_VOCABULARY.correct("cardioversion") == "cardioversion"  # 5 edits
    assert EVERYDAY_VOCABULARY.correct("bullemia") == "bulimia"


def test_negative_contractions_are_one_word() -> None:
    assert query_tokens("can't fall asleep") == ["cant", "fall", "asleep"]
    assert query_tokens("don\u2019t want to eat") == ["dont", "want", "to", "eat"]
    assert query_tokens("crohn's disease") == ["crohn", "s", "disease"]


@pytest.mark.parametrize(
    ("title", "wanted"),
    [
        ("Pressure ulcer of right heel, stage 2", {"bedsore", "bed sore"}),  # every site
        ("Pressure ulcer of sacral region, stage 2", {"bedsore", "tailbone"}),
        ("Bulimia nervosa, unspecified", {"making myself throw up"}),
        ("Suicidal ideations", {"thoughts of killing myself", "killing myself"}),
        ("Nonsuicidal self-harm", {"cutting myself"}),
        ("Primary insomnia", {"cant fall asleep"}),
        ("Melena", {"blood in poop"}),
        ("Hematuria, unspecified", {"blood in pee"}),
        ("Severe pre-eclampsia, unspecified trimester", {"preeclampsia with severe features"}),
        ("Other chest pain", {"atypical chest pain", "atypical cp"}),
        ("Tubal ligation status", {"had my tubes tied"}),
    ],
)
def test_lay_phrasings_reach_their_entries(title: str, wanted: set[str]) -> None:
    terms = set(default_lexicon().terms("ICD10CM", title))
    assert wanted <= terms


def test_a_last_word_being_typed_is_not_corrected() -> None:
    assert VOCABULARY.correct("schizo", as_prefix=True) == "schizo"
    assert VOCABULARY.entries("migraine") >= 3


# -- ranking ---------------------------------------------------------------------------


def _doc(
    code: str, title: str, *terms: str, billable: bool = True, kind: str = "code"
) -> CodeDocument:
    return CodeDocument("ICD10CM", code, title, billable, kind, terms=terms)


def _ranked(text: str, *docs: CodeDocument) -> list[str]:
    plan = analyze(text)
    reading = Query.of(query_words(plan.words), prefix=True)  # as typed: maybe unfinished
    return [d.code for d in rank(plan, list(docs), [reading])]


def test_the_entry_a_term_marks_nos_leads() -> None:
    assert _ranked(
        "stroke",
        _doc("Z82.3", "Family history of stroke"),
        _doc("G46.4", "Cerebellar stroke syndrome"),
        _doc("I63.9", "Cerebral infarction, unspecified", "Stroke NOS"),
    )[0] == "I63.9"


def test_conditions_in_another_context_give_way() -> None:
    assert _ranked(
        "urinary tract infection",
        _doc("O23.40", "Unspecified infection of urinary tract in pregnancy, first trimester"),
        _doc("N39.0", "Urinary tract infection, site not specified"),
    )[0] == "N39.0"


def test_headings_and_prefix_completions_give_way() -> None:
    assert _ranked(
        "hiv",
        _doc("B20-B20", "Human immunodeficiency virus [HIV] disease", billable=False, kind="block"),
        _doc("L50.9", "Urticaria, unspecified", "hives NOS"),
        _doc("B20", "Human immunodeficiency virus [HIV] disease", "hiv NOS"),
    ) == ["B20", "L50.9", "B20-B20"]


def test_a_word_after_non_is_not_stated_by_the_title() -> None:
    lexicon = default_lexicon()
    nonpressure = lexicon.terms(
        "ICD10CM", "Non-pressure chronic ulcer of right heel and midfoot with fat layer exposed"
    )
    assert "bed sore" not in nonpressure and "chronic ulcer" in nonpressure
    assert "bed sore" in lexicon.terms("ICD10CM", "Pressure ulcer of right heel, stage 1")
    noninsulin = "Long-term (current) use of injectable non-insulin antidiabetic drugs"
    assert "on insulin" not in lexicon.terms("ICD10CM", noninsulin)
    # A concept named with "non" still applies: non-Hodgkin lymphoma is "nhl".
    assert "nhl" in lexicon.terms("ICD10CM", "Non-Hodgkin lymphoma, unspecified")


def test_the_encounter_of_a_seventh_character_is_no_visit_reason() -> None:
    lexicon = default_lexicon()
    assert "flu shot" in lexicon.terms("ICD10CM", "Encounter for immunization")
    injury = "Infection following immunization, initial encounter"
    assert "flu shot" not in lexicon.terms("ICD10CM", injury)
