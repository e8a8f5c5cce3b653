"""Whether a query asks for a procedure or for a condition.

ICD-10-CM holds conditions and ICD-10-PCS procedures, and many words belong to both:
"knee", "left", "foot", "swollen" reach the thousands of PCS codes built on a body part
as easily as the conditions of it. A query that names no procedure ("my left foot is
swollen and red") means a condition; one that names a procedure ("laparoscopic
appendectomy", "amputation of the toe") means one, unless it speaks of the procedure as
the patient's state or history ("s/p colostomy", "trach dependent", "infected knee
replacement"), which ICD-10-CM codes.

A procedure is named by the PCS root operations people say as they are (excision,
drainage, fusion), by the word endings surgery is named with (-ectomy, -otomy, -ostomy,
-plasty, -scopy, -pexy, -desis, -rrhaphy, -centesis, -tripsy), by a short list of
everyday procedure words, by a count of how many were done ("x2"), and by the words
only the lexicon's procedure names use
("chole", "egd", "stent"). Root operations that are also everyday words ("change",
"control", "delivery", "release", "transfer", "map") are left out: they name conditions
as often ("change of life", "delivery" of a baby is coded in both).

Ranking holds procedure codes back when a query names no procedure, and conditions back
when it surely names one (a root operation, a surgical ending, an everyday procedure
word; not a word of the lexicon's procedure names alone, as some are everyday words
too): "orif left clavicle fracture" is the reduction, "left clavicle fracture" the
fracture. Either is a tie-breaker, less than one word's coverage.

Injuries are held back too, more firmly (scoring._NOT_AN_INJURY). ICD-10-CM's injury
and external-cause chapters code a body part under every kind of injury, each side and
each encounter, so their codes outnumber the conditions of any body part: "a rash on my
arms that itches" reached the abrasions of the arm, "burning in my chest after I eat"
the burns of the chest wall. A query means an injury when it names one: a kind of
injury as the injury chapter's own axis names them (fracture, sprain, laceration, burn,
poisoning, foreign body, ...), the everyday words for them ("broke", "cut", "fell"),
how it happened (an accident, a vehicle, an assault), an encounter for one (initial,
subsequent, sequela), or a name the lexicon gives any of those ("gsw", "jammed
finger", "road rash"). "Burning" is left out: people say it of a sensation ("burning
in my chest") more often than of an injury; "burns" is kept, for "burns on my arm".

A query naming both an injury and how it happened ("fell off a ladder and broke my
wrist") wants the injury first: chapter 20's external causes are coded after it, never
first (names_injury). A bite, a sting or a gunshot names both at once ("Bitten by dog"
is a cause), so it counts here as a cause only.

A title saying "A following B" (a sequela of a stroke, an infection following a
procedure) names what came of B; it is held back for a query naming no time after an
event (asks_later).

Pregnancy, childbirth and the puerperium (chapter 15) are held back in the same way for
a query naming none of them (asks_pregnancy): their titles often name the condition
alone ("Eclampsia, unspecified as to time period").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Final

from services.lookup.lexicon import default_lexicon
from services.lookup.search.wording import STOPWORDS
from services.shared.search.text import IRREGULAR, fold, stem, words

_ENDINGS: Final = re.compile(
    r"[a-z]{2,}(?:ectomy|otomy|ostomy|tomy|plasty|scopy|scopic|pexy|desis|rrhaphy|centesis"
    r"|tripsy|ectomies|otomies|ostomies|plasties|scopies)$"
)
# Unambiguous PCS root operations, and the everyday words surgery is asked for with.
_PROCEDURE_WORDS: Final = frozenset(
    stem(w)
    for w in (
        "bypass destruction detachment dilation drainage excision extirpation extraction"
        " fragmentation fusion insertion inspection occlusion reattachment removal repair"
        " replacement reposition resection transplantation irrigation"
        " ablation amputation biopsy catheterization debridement graft grafting implant"
        " implantation incision injection infusion intubation orif placement procedure"
        " reconstruction remove surgery surgical transfusion transplant"
    ).split()
)
# How many were done, as coders count what they did ("cabg x3", "stent x2"): a
# procedure's count, which a condition never has.
_COUNT: Final = re.compile(r"x\d{1,2}")
# Words that make a procedure the patient's state or history rather than the thing
# done: ICD-10-CM's status (Z codes) and complication codes.
_STATE_WORDS: Final = frozenset(
    stem(w)
    for w in (
        "absence absent complication dependence dependent displacement failed failure"
        " history hx infected infection leak malfunction presence rejection status"
        " ago"  # "had my gallbladder out two years ago": the patient's history
    ).split()
)


# Chapter 19's kinds of injury (its fourth-character axis and its blocks) and their
# everyday words; with what else the lexicon calls them. A bite, a sting or a gunshot
# also names its cause ("Bitten by dog", "gsw": the firearm's discharge), so those are
# kept apart (names_injury).
_ALSO_CAUSES: Final = ("bite", "bitten", "sting", "stung", "shot", "gunshot")
_INJURY_KINDS: Final = (
    "abrasion amputated avulsion blister burn burned burnt concussion"
    " contusion corrosion crush crushed crushing dislocated dislocation displaced"
    " displacement foreign frostbite fracture fractured injured injuries injury"
    " laceration nondisplaced overdose poisoning puncture sprain sprained strain"
    " toxic trauma traumatic underdosing whiplash wound"
    " broke broken break bruise bruised cut gash scrape scraped scratch scratched"
    " stab stabbed swallowed inhaled twisted torn tore sliced slit"
).split()
# Chapter 20's causes.
_CAUSES: Final = (
    "accident assault collision crash drowning fall fell fallen hit struck"
    " bicycle driver motorcycle occupant passenger pedestrian vehicle"
).split()
# What names a pregnancy, a childbirth or the puerperium: ICD-10-CM's chapter 15 is
# for those alone (search.intent.asks_pregnancy).
_PREGNANCY: Final = (
    "pregnant pregnancy pregnancies trimester gestation gestational antepartum antenatal"
    " prenatal intrapartum postpartum postnatal puerperal puerperium labor labour"
    " delivery delivered childbirth obstetric obstetrical gravid gravida primigravida"
    " multigravida miscarriage miscarried abortion ectopic eclampsia preeclampsia"
    " hyperemesis placenta placental previa abruption cesarean caesarean amniotic"
    " oligohydramnios polyhydramnios chorioamnionitis fetal fetus breech lactation"
    " lactating expecting"
).split()
# What names a time after an event: a sequela, a complication, a history. Titles saying
# "A following B" (search.intent.asks_later) name A as what came of B.
_LATER: Final = (
    "after afterwards following post postop postoperative postprocedural status history"
    " hx old late residual residuals sequela sequelae complication complications since"
    " prior previous previously recovering"
).split()
# The encounter words of a seventh character, which only injuries have.
_ENCOUNTERS: Final = "encounter initial subsequent sequela sequelae init subs".split()
# Said of a sensation more often than of an injury (see the module docstring); as
# typed, as its stem is the injury's ("burn").
SENSATIONS: Final = frozenset({"burning"})


_Names = tuple[frozenset[str], frozenset[str], dict[str, tuple[tuple[str, ...], ...]]]


@cache
def _injury_names() -> _Names:
    """Injuries, their causes and encounters (_names)."""
    return _names((*_INJURY_KINDS, *_ALSO_CAUSES, *_CAUSES), _ENCOUNTERS)


@cache
def _injury_kind_names() -> _Names:
    """The injuries themselves (_names)."""
    return _names(_INJURY_KINDS, ())


@cache
def _cause_names() -> _Names:
    """How injuries happen (_names)."""
    return _names((*_CAUSES, *_ALSO_CAUSES), ())


@cache
def _pregnancy_names() -> _Names:
    """Pregnancy and childbirth (_names)."""
    return _names(_PREGNANCY, ())


@cache
def _later_names() -> _Names:
    """Times after an event (_names)."""
    return _names(_LATER, ())


def _names(kinds: Sequence[str], more: Sequence[str]) -> _Names:
    """The stems of the words; the lexicon's one-word names for them as written ("fx",
    "gsw", "shiner"; "bitten" as "bite") and not by stem, as "attacked", a name of an
    assault, stems like the "attack" of "heart attack"; and its names of more words, as
    query words ("jammed finger", "road rash", "hit head"), by their first word: a query
    is read for every search."""
    named = default_lexicon().names_needing(kinds)
    single = frozenset(stem(w) for w in (*kinds, *more))
    exact = frozenset(fold(n) for n in named if " " not in n)
    phrases = {tuple(w for w in words(n) if w not in STOPWORDS) for n in named if " " in n}
    by_first: dict[str, list[tuple[str, ...]]] = {}
    for phrase in sorted(p for p in phrases if len(p) > 1):
        by_first.setdefault(phrase[0], []).append(phrase)
    return single, exact, {first: tuple(found) for first, found in by_first.items()}


def prepare() -> None:
    """Read the lexicon and derive the names of each kind now, not in the first search
    that asks (a fifth of a second)."""
    default_lexicon()
    for names in (_injury_names, _injury_kind_names, _cause_names, _pregnancy_names,
                  _later_names):
        names()


def asks_injury(words_: Sequence[str]) -> bool:
    """Whether query words (folded, no stopwords) name an injury, how one happened, or
    an encounter for one (see the module docstring)."""
    return _named(_unbroken(words_), _injury_names())


# What breaks out is a rash ("i broke out in hives"): no fracture.
_BREAK: Final = frozenset({"break", "breaks", "breaking", "broke", "broken"})


def _unbroken(words_: Sequence[str]) -> Sequence[str]:
    """The words without a break that is a breaking out."""
    if "out" not in words_:
        return words_
    return [w for i, w in enumerate(words_)
            if not (w in _BREAK and i + 1 < len(words_) and words_[i + 1] == "out")]


def names_injury(words_: Sequence[str]) -> bool:
    """Whether query words name both an injury (a fracture, a burn) and how it happened:
    the external cause is then coded after the injury, never first (ICD-10-CM's
    guidelines, chapter 20): "fell off a ladder and broke my wrist" is the fracture.
    Not an injury alone: "cutting myself on purpose" is the self-harm."""
    return _named(_unbroken(words_), _injury_kind_names()) and _named(words_, _cause_names())


def asks_pregnancy(words_: Sequence[str]) -> bool:
    """Whether query words name a pregnancy, a childbirth or the time after one, or
    what only they have ("morning sickness", the lexicon's names for them): chapter
    15's codes are for nothing else. Its titles often name the condition alone
    ("Eclampsia, unspecified as to time period"), so "my son had a seizure for the
    first time" reached it through "seizure" and "time"."""
    return _named(words_, _pregnancy_names())


def asks_later(words_: Sequence[str]) -> bool:
    """Whether query words name a time after an event ("old cva", "post op", "late
    effect", "residual"): what a title saying "A following B" means. "sudden weakness on
    one side and the ct showed a stroke" is the stroke, not hemiplegia following one."""
    return _named(words_, _later_names())


def _named(words_: Sequence[str], names: _Names) -> bool:
    single, exact, phrases = names
    if any(w not in SENSATIONS and (stem(w) in single or IRREGULAR.get(w, w) in exact)
           for w in words_):
        return True
    said = tuple(words_)
    return any(
        said[i : i + len(p)] == p for i, w in enumerate(said) for p in phrases.get(w, ())
    )


def asks_procedure(words: Iterable[str], *, surely: bool = False) -> bool:
    """Whether query words (folded) name a procedure done, not a state after one.

    ``surely``: named by a root operation, a surgical ending or an everyday procedure
    word, not only by a word of the lexicon's procedure names, some of which people also
    say of anything ("three" vessels, "total", "put"). Enough to prefer procedures to
    conditions; the weaker reading only holds procedures back when it fails.
    """
    named = sure = False
    lexicon = default_lexicon().procedure_words
    for word in words:
        stemmed = stem(word)
        if stemmed in _STATE_WORDS:
            return False
        strong = (stemmed in _PROCEDURE_WORDS or _ENDINGS.match(word) is not None
                  or _COUNT.fullmatch(word) is not None)
        sure = sure or strong
        named = named or strong or stemmed in lexicon
    return sure if surely else named
