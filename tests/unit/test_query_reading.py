"""How lookup reads the long tail of queries: procedure or condition, filler, sides,
letters run into numbers, nouns and their adjectives."""

from __future__ import annotations

import pytest

from services.lookup.search.documents import CodeDocument, code_plan
from services.lookup.search.intent import (
    asks_injury,
    asks_later,
    asks_pregnancy,
    asks_procedure,
    names_injury,
)
from services.lookup.search.matching import Query
from services.lookup.search.scoring import rank
from services.lookup.search.spelling import Vocabulary
from services.lookup.search.wording import (
    content_words,
    denied,
    diagnosis_of,
    first_person,
    negated_of,
    painful,
    past,
    query_tokens,
    query_words,
    said,
    said_to_be,
    spinal_levels,
    trimester_weeks,
)
from tests.unit.test_search_plans import first


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
    "pacemaker in place",  # ICD-10-CM's "Presence of cardiac pacemaker"
    # Done long ago: the patient's history, not the procedure coded now.
    "had my gallbladder removed last year", "knee replacement 3 years ago",
])
def test_a_condition_or_a_state_after_a_procedure_does_not(query: str) -> None:
    assert not asks_procedure(_words(query))


@pytest.mark.parametrize(("query", "surely"), [
    ("orif left clavicle fracture", True), ("laparoscopic cholecystectomy", True),
    ("amputation of the right great toe", True),
    ("stent x2", True), ("cabg x3", True),  # a count of what was done
    ("hx cabg x3", False),  # a state after it
    # Words of the lexicon's procedure names that people say of anything: "three"
    # vessels, "total" knee replacement. A procedure, maybe; a condition not ruled out.
    ("she has had diarrhea for three days", False),
])
def test_a_procedure_is_named_surely_only_by_operations_and_surgical_words(
    query: str, surely: bool
) -> None:
    assert asks_procedure(_words(query), surely=True) is surely


@pytest.mark.parametrize("query", [
    "broke my wrist", "hip fx subsequent", "burns on my arm", "car accident",
    "fell off a ladder", "dog bite", "sprained ankle",
    # Names the lexicon gives injuries: one word, or more.
    "gsw abdomen", "fb eye", "jammed finger", "road rash on my knee", "attacked by a dog",
    "bitten on the leg", "sliced my finger",
])
def test_a_query_naming_an_injury_its_cause_or_an_encounter_asks_for_one(query: str) -> None:
    assert asks_injury(_words(query))


@pytest.mark.parametrize("query", [
    "there is a rash on my arms that itches a lot", "burning in my chest after i eat",
    "my knee gives out when i walk", "left arm pain", "burning feet",
    # A word stemmed like a name the lexicon gives an injury ("attacked", an assault).
    "heart attack", "panic attacks",
    # What breaks out is a rash.
    "i broke out in hives", "breaking out in a rash",
])
def test_a_query_naming_no_injury_does_not(query: str) -> None:
    assert not asks_injury(_words(query))


def test_a_sentence_naming_no_injury_prefers_a_condition_to_an_injury_of_its_body_part() -> None:
    abrasion = CodeDocument("ICD10CM", "S40.819A", "Abrasion of unspecified upper arm, initial "
                            "encounter", True, "code", chapter="19", terms=("road rash", "arm"))
    itch = CodeDocument("ICD10CM", "L29.9", "Pruritus, unspecified", True, "code", chapter="12",
                        terms=("itch NOS", "itchy"))
    rash = CodeDocument("ICD10CM", "R21", "Rash and other nonspecific skin eruption", True,
                        "code", chapter="18", terms=("rash NOS", "skin rash NOS"))
    documents = [abrasion, itch, rash]
    # The abrasion holds two of the words ("rash", "arms"), the others one each.
    assert _ranked("there is a rash on my arms that itches a lot", documents)[0] != "S40.819A"
    assert _ranked("road rash on my arm", documents)[0] == "S40.819A"


# The 7th characters of a fracture's codes, and what each says of the encounter.
_ENCOUNTERS = {
    "A": "initial encounter for closed fracture", "B": "initial encounter for open fracture",
    "D": "subsequent encounter for fracture with routine healing",
    "G": "subsequent encounter for fracture with delayed healing",
    "K": "subsequent encounter for fracture with nonunion",
    "P": "subsequent encounter for fracture with malunion", "S": "sequela",
}


def _ranked(
    text: str, documents: list[CodeDocument], stressed: tuple[str, ...] = ()
) -> list[str]:
    words = _words(text)
    readings = [Query.of(words, prefix=True, typed=text, stressed=stressed)]
    return [d.code for d in rank(code_plan(words), documents, readings)]


def test_a_query_surely_naming_a_procedure_prefers_it_to_the_condition() -> None:
    conditions = [
        CodeDocument("ICD10CM", f"S42.002{x}", f"Fracture of unspecified part of left clavicle, "
                     f"{encounter}", True, "code", terms=("collarbone", "collarbone fracture"))
        for x, encounter in _ENCOUNTERS.items()
    ]
    procedure = CodeDocument(
        "ICD10PCS", "0PSB04Z", "Reposition Left Clavicle with Internal Fixation Device, Open "
        "Approach", True, "code", terms=("collarbone", "reduction", "fracture reduction", "orif",
                                         "open reduction internal fixation"),
    )

    def top_five(text: str) -> list[str]:
        return _ranked(text, [*conditions, procedure])[:5]

    # The reduction is among the first five, ahead of most encounters for the fracture.
    assert "0PSB04Z" in top_five("orif left clavicle fracture")
    # Without a procedure named, the fracture's encounters come first.
    assert "0PSB04Z" not in top_five("left clavicle fracture")


def test_a_subsequent_encounter_means_routine_healing_unless_the_query_says_otherwise() -> None:
    fractures = [
        CodeDocument("ICD10CM", f"S72.001{x}", "Fracture of unspecified part of neck of right "
                     f"femur, {encounter}", True, "code")
        for x, encounter in _ENCOUNTERS.items() if x != "S"
    ]
    assert _ranked("right femur neck fracture subsequent", fractures)[0] == "S72.001D"
    assert _ranked("right femur neck fracture subsequent nonunion", fractures)[0] == "S72.001K"
    assert _ranked("right femur neck fracture delayed healing", fractures)[0] == "S72.001G"


def test_a_device_in_place_is_its_presence() -> None:
    assert _words("aicd in place") == ("aicd", "presence")


def test_filler_is_not_required_unless_it_is_all_there_is() -> None:
    assert content_words(("feel", "tired", "day")) == ("tired",)
    assert content_words(("feel", "day")) == ("feel", "day")


def test_abbreviated_sides_are_spelt_out_beside_other_words() -> None:
    assert query_tokens("fx l wrist") == ["fx", "left", "wrist"]
    assert query_tokens("rt knee pain") == ["right", "knee", "pain"]
    assert query_tokens("bilat cataracts") == ["bilateral", "cataracts"]
    assert query_tokens("dry amd os") == ["dry", "amd", "left"]  # oculus sinister
    assert query_tokens("poag ou") == ["poag", "bilateral"]  # oculus uterque
    assert query_tokens("od on heroin") == ["od", "on", "heroin"]  # an overdose too
    assert query_tokens("r") == ["r"]  # alone it is not a side
    assert query_tokens("s/p colostomy") == ["status", "post", "colostomy"]


VOCABULARY = Vocabulary([
    "Chronic kidney disease, stage 3", "CKD", "dm2", "Streptococcal sepsis",
    "Sepsis due to streptococcus", "Viral pneumonia", "Psychotic disorder",
])


def test_letters_run_into_a_number_split_when_only_the_letters_are_known() -> None:
    assert VOCABULARY.split("ckd3") == ("ckd", "3")
    assert VOCABULARY.split("ckd3a") == ("ckd", "3a")  # a stage's letter too
    assert VOCABULARY.split("dm2") == ("dm2",)  # known as it is
    assert VOCABULARY.split("xyz3") == ("xyz3",)  # nothing known to split into


def test_a_noun_is_read_as_the_adjective_the_index_uses() -> None:
    assert VOCABULARY.adjective("streptococcus") == "streptococcal"
    assert VOCABULARY.adjective("virus") == "viral"
    assert VOCABULARY.adjective("psychosis") == "psychotic"
    assert VOCABULARY.adjective("sepsis") == "sepsis"  # no adjective known


@pytest.mark.parametrize(("query", "readings"), [
    ("l5 compression fx", [("fifth", "lumbar", "vertebra", "compression", "fx")]),
    ("c3 cervical", [("third", "cervical", "vertebra")]),  # never "third cervical" alone
    ("fusion c5-c6", [("fusion", "cervical", "vertebral", "joint"), ("fusion", "cervical")]),
    ("l5-s1 fusion", [("lumbosacral", "joint", "fusion"), ("lumbosacral", "fusion")]),
    ("c7-t1", [("cervicothoracic", "vertebral", "joint"), ("cervicothoracic",)]),
    ("t13 l6 c8", []),  # no such vertebrae (C8 is a nerve root)
    ("s72 fracture", []),
])
def test_spinal_levels_are_spelt_out_as_titles_say_them(
    query: str, readings: list[tuple[str, ...]]
) -> None:
    assert spinal_levels(_words(query)) == readings


@pytest.mark.parametrize(("query", "readings"), [
    ("high blood pressure at 32 weeks pregnant",
     [("high", "blood", "pressure", "third", "trimester", "pregnant")]),
    ("pregnant 13 wks bleeding", [("pregnant", "first", "trimester", "bleeding")]),
    ("14 weeks pregnant", [("second", "trimester", "pregnant")]),  # from 14 weeks 0 days
    ("28 weeks pregnant", [("third", "trimester", "pregnant")]),
    ("27 weeks second trimester", [("second", "trimester")]),  # not said twice
    ("born at 32 weeks", []),  # a newborn's gestational age
    ("prematurity 32 weeks", []),
    ("pregnant 0 weeks", []),
    ("pregnant for 3 months", []),
])
def test_weeks_of_pregnancy_are_named_as_their_trimester(
    query: str, readings: list[tuple[str, ...]]
) -> None:
    assert trimester_weeks(_words(query)) == readings


def test_the_words_as_typed_win_over_levels_spelt_out_where_both_are_found() -> None:
    typed = _words("t5 t6")
    readings = [Query.of(typed), *(Query.of(r, spelt=True) for r in spinal_levels(typed))]
    fracture = CodeDocument("ICD10CM", "S22.059A", "Unspecified fracture of T5-T6 vertebra, "
                            "initial encounter for closed fracture", True, "code")
    joint = CodeDocument("ICD10CM", "M99.92", "Biomechanical lesion of thoracic vertebral joint",
                         True, "code")
    assert rank(code_plan(typed), [joint, fracture], readings)[0] == fracture
    # Where the levels as typed are found nowhere, the spelt-out reading finds the entry.
    typed = _words("l5 compression fx")
    readings = [Query.of(typed), *(Query.of(r, spelt=True) for r in spinal_levels(typed))]
    vertebra = CodeDocument("ICD10CM", "S32.050A", "Wedge compression fracture of fifth lumbar "
                            "vertebra, initial encounter for closed fracture", True, "code",
                            terms=("fx",))
    collapsed = CodeDocument("ICD10CM", "M48.50XA", "Collapsed vertebra, not elsewhere "
                             "classified, site unspecified, initial encounter for fracture",
                             True, "code", terms=("compression fx",))
    assert rank(code_plan(typed), [collapsed, vertebra], readings)[0] == vertebra


def test_a_text_does_not_hold_a_word_it_names_as_absent() -> None:
    without = CodeDocument("ICD10CM", "N40.0", "Benign prostatic hyperplasia without lower urinary "
                           "tract symptoms", True, "code", terms=("bph NOS", "Enlarged prostate "
                                                                  "without LUTS"))
    with_ = CodeDocument("ICD10CM", "N40.1", "Benign prostatic hyperplasia with lower urinary "
                         "tract symptoms", True, "code", terms=("bph", "luts"))
    assert _ranked("bph w luts", [without, with_])[0] == "N40.1"
    assert _ranked("bph w lut", [without, with_])[0] == "N40.1"  # "luts" half typed
    # Unless the query asks for it to be absent too.
    assert _ranked("bph w/o luts", [without, with_])[0] == "N40.0"


def test_what_a_text_names_as_absent_ends_with_its_clause() -> None:
    # The words, and their stems.
    assert negated_of("Calculus of gallbladder without cholecystitis, with obstruction") == {
        "cholecystitis", "cholecyst"
    }
    assert negated_of("Enlarged prostate (without LUTS) of the elderly") == {"luts", "lut"}
    # Not a stem a stated word has: "esophageal" is stated, "esophagitis" absent.
    assert negated_of("Gastro-esophageal reflux disease without esophagitis") == {"esophagitis"}
    assert negated_of("Acute pancreatitis") == frozenset()
    # A side begins the site of the laceration, not of the foreign body it rules out.
    assert not {"left", "index", "finger"} & negated_of(
        "Laceration without foreign body of left index finger without damage to nail"
    )
    assert "consciousness" in negated_of("Concussion without loss of consciousness")
    assert negated_of("without blood in pee") == {"blood"}


def test_a_neonatal_condition_gives_way_to_the_condition_itself() -> None:
    # "Neonatal" sets a condition in another context, as "newborn" does.
    neonatal = CodeDocument("ICD10CM", "P91.821", "Neonatal cerebral infarction, right side of "
                            "brain", True, "code", chapter="16", terms=("stroke",))
    adult = CodeDocument("ICD10CM", "I63.011", "Cerebral infarction due to thrombosis of right "
                         "vertebral artery", True, "code", chapter="9", terms=("stroke",))
    assert _ranked("stroke right", [neonatal, adult])[0] == "I63.011"


@pytest.mark.parametrize(("query", "both"), [
    ("fell off a ladder and broke my wrist", True), ("car accident whiplash", True),
    ("fall from ladder", False), ("broken wrist", False), ("gsw abdomen", False),
    ("cutting myself on purpose", False),
])
def test_a_query_names_an_injury_and_its_cause_only_when_it_says_both(
    query: str, both: bool
) -> None:
    assert names_injury(_words(query)) is both


def test_an_external_cause_comes_after_the_injury_a_query_also_names() -> None:
    """The fall is named in one text ("fell off ladder"), the fracture in two; the cause
    is coded after the injury, never first."""
    fall = CodeDocument("ICD10CM", "W11.XXXA", "Fall on and from ladder, initial encounter",
                        True, "code", chapter="20", terms=("fell off ladder",))
    fracture = CodeDocument("ICD10CM", "S62.101A", "Fracture of unspecified carpal bone, "
                            "right wrist, initial encounter for closed fracture", True, "code",
                            chapter="19", terms=("broke",))
    documents = [fall, fracture]
    assert _ranked("fell off a ladder and broke my right wrist", documents)[0] == "S62.101A"
    assert _ranked("fell off a ladder", documents)[0] == "W11.XXXA"


@pytest.mark.parametrize(("query", "pregnant"), [
    ("32 weeks pregnant with high blood pressure", True), ("preeclampsia", True),
    ("vomiting in the first trimester", True), ("my son had a seizure", False),
    ("threw up blood this morning", False),
    ("school nurse found lice", False),  # not "nursing", a name of lactation
])
def test_a_query_names_a_pregnancy_only_when_it_says_one(query: str, pregnant: bool) -> None:
    assert asks_pregnancy(_words(query)) is pregnant


def test_a_query_naming_no_pregnancy_prefers_a_condition_to_one_complicating_pregnancy() -> None:
    """Chapter 15's titles often name the condition alone: here both say "seizure", and
    only the query says whether a pregnancy is meant."""
    eclampsia = CodeDocument("ICD10CM", "O15.9", "Eclampsia, unspecified as to time period",
                             True, "code", chapter="15", terms=("seizure",))
    seizure = CodeDocument("ICD10CM", "R56.9", "Unspecified convulsions", True, "code",
                           chapter="18", terms=("seizure",))
    documents = [eclampsia, seizure]
    assert _ranked("my son had a seizure", documents)[0] == "R56.9"
    assert _ranked("seizure in pregnancy", documents)[0] == "O15.9"


@pytest.mark.parametrize(("query", "later"), [
    ("old cva w rt hemiplegia", True), ("post op infection", True),
    ("late effect cva l hemiparesis", True), ("s/p fall", True),
    ("weakness on one side and the ct showed a stroke", False), ("stroke", False),
])
def test_a_query_names_a_time_after_an_event_only_when_it_says_one(
    query: str, later: bool
) -> None:
    assert asks_later(_words(query)) is later


def test_what_came_of_an_event_gives_way_unless_a_query_asks_for_a_time_after_it() -> None:
    """"Hemiplegia ... following cerebral infarction" holds more of the words, and is
    what is left of a stroke; the query names the stroke itself."""
    sequela = CodeDocument("ICD10CM", "I69.359", "Hemiplegia and hemiparesis following "
                           "cerebral infarction affecting unspecified side", True, "code",
                           chapter="9", terms=("stroke", "weakness one side"))
    stroke = CodeDocument("ICD10CM", "I63.9", "Cerebral infarction, unspecified", True,
                          "code", chapter="9", terms=("stroke",))
    documents = [sequela, stroke]
    assert _ranked("the ct showed a stroke and weakness", documents)[0] == "I63.9"
    assert _ranked("old stroke with weakness", documents)[0] == "I69.359"


@pytest.mark.parametrize(("query", "read"), [
    ("sugar was high but i don't have diabetes", ("sugar", "high", "but")),
    ("chest pain, denies sob", ("chest", "pain")),
    ("cough but does not have fever, has wheezing", ("cough", "but", "wheezing")),
    ("i dont have diabetes", ("dont", "diabetes")),  # nothing else: as typed
    ("migraine not intractable", ("migraine", "not", "intractable")),  # as titles say it
])
def test_what_a_query_denies_is_left_out(query: str, read: tuple[str, ...]) -> None:
    assert _words(query) == read


@pytest.mark.parametrize(("query", "named"), [
    ("coughing at night and the doctor said it's croup", ("croup",)),
    ("long time smoker diagnosed with emphysema", ("emphysema",)),
    ("weakness on one side and the ct showed a stroke, now better", ("stroke",)),
    ("my toe is red and hot", ()),
    ("tested positive for covid, fever and cough", ("covid",)),
    # An injury: the injury word and what it was done to, not how or where it happened.
    ("dad fell at the nursing home and broke his left hip", ("broke", "left", "hip")),
    ("twisted my right ankle playing basketball", ("twisted", "right", "ankle")),
    ("my ankle is swollen and bruised", ()),  # to what is not said
    ("i broke out in itchy hives", ()),  # an eruption
])
def test_the_diagnosis_a_query_says_was_made_is_read(
    query: str, named: tuple[str, ...]
) -> None:
    assert diagnosis_of(query) == named


def test_the_diagnosis_made_counts_more_than_the_signs_that_led_to_it() -> None:
    """Both entries hold two of the words; the diagnosis named is the code, and among
    its entries the one holding the query's details too ("right big toe")."""
    cough = CodeDocument("ICD10CM", "R05.9", "Cough, unspecified", True, "code",
                         terms=("cough NOS", "dry cough", "hacking cough"))
    croup = CodeDocument("ICD10CM", "J05.0", "Acute obstructive laryngitis [croup]", True,
                         "code", terms=("croup", "loss of voice"))
    query = "a bad cough at night and the doctor said its croup"
    named = diagnosis_of(query)
    assert _ranked(query, [cough, croup], stressed=named)[0] == "J05.0"
    gout = CodeDocument("ICD10CM", "M10.9", "Gout, unspecified", True, "code")
    toe = CodeDocument("ICD10CM", "M10.071", "Idiopathic gout, right ankle and foot", True,
                       "code", terms=("big toe", "r"))
    query = "my right big toe is swollen and the doctor said its gout"
    named = diagnosis_of(query)
    assert _ranked(query, [gout, toe], stressed=named)[0] == "M10.071"


@pytest.mark.parametrize(("query", "told"), [
    ("the doctor said the painful rash on my side is shingles", ("shingles",)),
    ("the doctor said her ear drum is red and bulging", ("red",)),  # a sign, not a name
    ("my side hurts", ()),
])
def test_what_a_query_says_someone_said_a_thing_is_is_read(
    query: str, told: tuple[str, ...]
) -> None:
    assert said_to_be(query) == told


def test_a_condition_someone_said_a_thing_is_counts_as_the_diagnosis() -> None:
    """"The doctor said the rash is shingles": the shingles, not the flank pain or the
    rash the sentence also names."""
    flank = CodeDocument("ICD10CM", "R10.A0", "Flank pain, unspecified side", True, "code",
                         terms=("side pain", "painful side"))
    rash = CodeDocument("ICD10CM", "R21", "Rash and other nonspecific skin eruption", True,
                        "code", terms=("rash NOS", "painful rash"))
    zoster = CodeDocument("ICD10CM", "B02.9", "Zoster without complications", True, "code",
                          terms=("shingles NOS",))
    docs = [flank, rash, zoster]
    assert first(docs, "the doctor said the painful rash on my side is shingles") == ["B02.9"]
    # What is said to be no condition is no diagnosis: the sentence's names count.
    assert first(docs, "the doctor said the painful rash on my side is red") == ["R21"]


def test_when_something_happened_is_not_required() -> None:
    assert content_words(("seizure", "first", "time", "today")) == ("seizure", "first")
    assert content_words(("vomiting", "morning")) == ("vomiting",)


def test_a_word_cut_short_is_read_as_the_commonest_word_it_begins() -> None:
    vocabulary = Vocabulary([
        "Tobacco dependence", "Tobacco use", "Tobramycin", "Opioid dependence",
        "Dependent edema", "Chronic obstructive pulmonary disease with exacerbation",
    ])
    assert vocabulary.correct("tob") == "tobacco"
    assert vocabulary.correct("dep") == "dependence"
    assert vocabulary.correct("exac") == "exacerbation"
    # The last word is being typed: it stays the start of a word.
    assert vocabulary.correct("tob", as_prefix=True) == "tob"
    assert vocabulary.correct("use") == "use"  # known as it is


@pytest.mark.parametrize(("query", "spoken"), [
    ("my psoriasis keeps flaring up", True),
    ("the doctor said its shingles", True),
    ("uc pancolitis w rectal bleeding", False),  # a note
    ("hx of cva w rt hemiparesis", False),
])
def test_a_query_with_pronouns_or_articles_is_said_as_a_sentence(query: str, spoken: bool) -> None:
    assert said(tuple(query_tokens(query))) is spoken


def test_the_everyday_verb_of_pain_reads_as_the_noun_titles_use() -> None:
    assert painful(("right", "ear", "hurts")) == ("right", "ear", "pain")
    assert painful(("hurt", "back")) == ("pain", "back")
    # Denied, it is no pain: "blood in my urine but it doesn't hurt".
    assert painful(("blood", "urine", "doesnt", "hurt")) == ("blood", "urine", "doesnt", "hurt")


def test_a_part_that_hurts_finds_its_pain() -> None:
    docs = [
        CodeDocument("ICD10CM", "H92.01", "Otalgia, right ear", True, "code",
                     terms=("ear pain",)),
        CodeDocument("ICD10CM", "H93.91", "Unspecified disorder of right ear", True, "code"),
    ]
    assert first(docs, "my right ear hurts")[0] == "H92.01"


def test_a_reflexive_said_of_someone_else_reads_as_the_lexicon_says_it() -> None:
    assert first_person(("daughter", "cutting", "herself")) == ("daughter", "cutting", "myself")
    assert first_person(("kill", "himself")) == ("kill", "myself")


def test_who_has_it_is_no_word_to_find() -> None:
    """"she" began "shellfish"; "us" stays, an ultrasound."""
    assert _words("she wants to kill herself") == ("wants", "kill", "herself")
    assert _words("he says they hurt him") == ("says", "hurt")
    assert _words("us guided biopsy") == ("us", "guided", "biopsy")


def test_a_denial_reads_as_titles_say_one() -> None:
    assert denied(("concussion", "didnt", "pass", "out")) == ("concussion", "without", "pass",
                                                               "out")
    assert denied(("no", "fever")) == ("without", "fever")


def test_a_sign_denied_is_the_entry_saying_without_it() -> None:
    without = CodeDocument("ICD10CM", "S06.0X0A", "Concussion without loss of consciousness, "
                           "initial encounter", True, "code", chapter="19",
                           terms=("without knocked out",))
    with_ = CodeDocument("ICD10CM", "S06.0X1A", "Concussion with loss of consciousness of 30 "
                         "minutes or less, initial encounter", True, "code", chapter="19",
                         terms=("knocked out",))
    assert first([without, with_], "he has a concussion but he didnt get knocked out") == [
        "S06.0X0A"
    ]


def test_months_or_years_ago_is_a_history_and_days_ago_is_not() -> None:
    assert past(("heart", "attack", "three", "months", "ago")) == ("heart", "attack", "history")
    assert past(("pneumonia", "2", "years", "ago", "again")) == ("pneumonia", "history", "again")
    assert past(("heart", "attack", "three", "days", "ago")) == ("heart", "attack", "three",
                                                                 "days", "ago")


def test_a_heart_attack_months_ago_is_an_old_one() -> None:
    old = CodeDocument("ICD10CM", "I25.2", "Old myocardial infarction", True, "code",
                       terms=("history of heart attack", "previous heart attack"))
    acute = CodeDocument("ICD10CM", "I21.9", "Acute myocardial infarction, unspecified", True,
                         "code", terms=("heart attack NOS",))
    docs = [old, acute]
    assert first(docs, "i had a heart attack three months ago") == ["I25.2"]
    assert first(docs, "i had a heart attack three days ago") == ["I21.9"]
