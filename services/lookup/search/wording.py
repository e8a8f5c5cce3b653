"""How lookup reads medical text: clinical stopwords and word lists, notation spelt out,
the details a title states, a title as a name, and where asked words stand in a title.

Folding and stemming are the shared search layer's (services.shared.search.text), so
these read words as every backend indexes them.

A little over 400 lines on purpose: the word lists and the small readings that use them
(spelt notation, weeks, pain, absence) are read together, and mypyc compiles them as one.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

from services.shared.search.text import breaks, fold, folded_words, stem

MAX_QUERY_WORDS: Final = 16

# Words that say nothing of which code is meant: dropped from queries before retrieval
# ("fluid on the knee", "burning when i pee"), and never counted as a title's extra words.
STOPWORDS: Final = frozenset(
    "a an and are as at be by for from had has have her his i im in is it its me my of on"
    " or our s the their to was w when where which while who with"
    " am been being did do does due during got into onto than that these this those upon"
    " very complains complaining patient pt presenting presents"
    # Who has it, said of someone else ("she wants to kill herself"): "she" began
    # "shellfish". Not "us", an ultrasound.
    " he she they him them we you".split()
)
# Everyday words patients type that are spelt right, though no code title uses them:
# never "corrected" into a clinical word ("making" is not "main", "killing" not
# "filling", "throw" not "thrown"). Unknown to the index, they are simply not matched.
EVERYDAY: Final = frozenset(
    "about after again always anything ate baby because before big came cant come comes"
    " couldnt cutting day days didnt doesnt dont eat eating every everything feel feeling"
    " feels felt forget forgetting forgot get gets getting give going gone helpless hopeless"
    " keep keeps kill killed killing kills know little lot lots make makes making myself"
    " night nights nothing now purpose really remember remembering said shake shakes shaky"
    " shoot shooting shoots since someone something start started stay staying stays stop"
    " stopped take taking talk talking talks thing things think thinking thought thoughts"
    " throw throwing threw told tried try trying useless want wanted wanting wants week weeks"
    " went wont worthless year years yourself himself herself"
    # When it began or happened ("for the first time today", "this morning"): titles
    # say these words only of other things ("unspecified as to time period").
    " today tonight yesterday morning mornings evening afternoon time times hour hours"
    " month months ago lately recently".split()
)
# Their stems: "coming" is "come" however the list spells it, not "cooing".
EVERYDAY_STEMS: Final = frozenset(stem(w) for w in EVERYDAY)
# Title words that add no detail a query could have asked for: not counted as extras.
# "With routine healing" is what a subsequent encounter for a fracture means unless a
# query says otherwise (delayed healing, nonunion, malunion are stated when so).
NEUTRAL: Final = STOPWORDS | frozenset(
    "approach classified closed elsewhere encounter healing initial nos organism part region"
    " routine side site trimester type unspecified".split()
)
# A text's words and the marks that end its clauses (bare_tokens).
_BARE: Final = re.compile(r"[a-z0-9]+|[,;]")
_BARE_BREAKS: Final = breaks(",;")
_MARKS: Final = frozenset(",;")
# ICD conventions: (parentheses) hold nonessential modifiers, [brackets] synonyms.
_ASIDE: Final = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")
# Title words that set a condition in another context than the one usually meant:
# "in pregnancy", "newborn", "history of", "sequela". A query that does not ask for
# one means the condition itself, so such titles give way.
CONTEXT: Final = frozenset(
    "affected childbirth complicating complication family fetal fetus history maternal"
    " newborn neonatal neonate perinatal personal pregnancy presence puerperium puerperal"
    " postpartum gestational screening sequela status subsequent underdosing".split()
)


# Clinical notation, spelt out before the query is split into words.
_NOTATION: Final = (
    (re.compile(r"\bw/o\b"), " without "),
    # Absence said in words, as titles say it: "migraine with no aura" is "without aura",
    # "there's no protein in my urine" "without" it.
    (re.compile(r"\b(?:with|there(?:['\u2019]?s| is| are| was| were)) no\b"), " without "),
    # "The dog bit me": the past of "bite" (text.IRREGULAR reads "bitten"), where "a bit"
    # is not meant.
    (re.compile(r"\bbit(?= (?:me|him|her|us|them|my|his|our|their|your|you)\b)"), "bitten"),
    # A time past by its name ("last year"), as one gone by ("a year ago"). Not "last
    # fall": also the latest fall, an injury's cause.
    (re.compile(r"\blast (year|month|spring|summer|autumn|winter)\b"), r" \1 ago "),
    # "A rash that burns", "it burns when I pee", "my stomach burns", "my eyes burn": a
    # burning, the sensation (intent), not burns, the injuries ("burns on my arm").
    (re.compile(r"\b(it|that|which|this) burns\b"), r"\1 burning"),
    (re.compile(r"\b((?:my|his|her|your|their|our) [a-z]+) burns?\b"), r"\1 burning"),
    (re.compile(r"\bh/o\b"), " history of "),
    (re.compile(r"\bs/p\b"), " status post "),
    (re.compile(r"\bd/o\b"), " disorder "),
    (re.compile(r"\bf/u\b"), " follow up "),
    (re.compile(r"\bi\s*&\s*d\b"), " incision and drainage "),
    (re.compile(r"\bb/l\b"), " bilateral "),
    # "Due to", as notes write it: "d/t", "r/t" (related to), "2/2" (secondary to).
    (re.compile(r"\b(?:d/t|r/t|2/2)(?=\s|$)"), " due to "),
    (re.compile(r"\bw/d\b"), " withdrawal "),
    (re.compile(r"\bh/a\b"), " headache "),
    # A device "in place" is the patient's state, as ICD-10-CM says it: "Presence of".
    (re.compile(r"\bin place\b"), " presence "),
    (re.compile(r"\b[cr]/o\b"), " "),  # complains of, rule out
    # "can't", "don't": one word, as the lexicon spells them ("cant sleep"), not "can t".
    (re.compile(r"(?<=[a-z])n['\u2019]t\b"), "nt"),
)
# What a query says is not the case, to the end of its clause: "high blood sugar but i
# don't have diabetes" is not diabetes, "chest pain, denies sob" not shortness of
# breath. Not "no" or "not": titles say "not intractable", and "no loc" is "without".
_DENIED: Final = re.compile(
    r"\b(?:denies|denied|denying|negative for|never had|(?:do|does|did)(?: not|nt) have)\b"
    r".*?(?=[,;.]|\bbut\b|$)"
)
# Where a query says which diagnosis was made (diagnosis_of).
_DIAGNOSED: Final = re.compile(
    r"\b(?:diagnosed (?:with|as)|diagnosis of|dx (?:of|with)|confirmed|showed|shows"
    r"|found to have|positive for"
    r"|(?:said|says|told me|thinks) (?:it(?:'|\u2019)?s|it is|it was|(?:i|he|she|we|they)"
    r" (?:have|has|had)))\b(.*?)(?=[,;.]|\b(?:but|and)\b|$)"
)
# Or the injury it says was suffered, the injury word with it ("fell at home and broke
# his left hip", "twisted my ankle playing basketball"), to where how and where it
# happened begin.
_INJURED: Final = re.compile(  # not "broke out in hives", an eruption (intent._unbroken)
    r"\b((?:broke|broken|fractured|sprained|twisted|dislocated|tore|torn|sliced|cut|"
    r"burned|burnt|bruised|injured)\b(?!\s+out\b).*?)"
    r"(?=[,;.]|\b(?:but|and|while|when|after|playing|at|from|with|on|in|by|doing)\b|$)"
)
_ROMAN: Final = {"i": "1", "ii": "2", "iii": "3", "iv": "4", "v": "5"}
_NUMBERED: Final = frozenset({"type", "stage", "grade", "class", "degree", "phase"})
# Sides as coders abbreviate them ("fx l wrist", "rt knee pain", "bilat cataracts"), and
# eyes as ophthalmology does ("os" the left, "ou" both; not "od", also an overdose):
# spelt out beside other words, since titles and PCS body parts say "left" and "right".
_SIDES: Final = {"l": "left", "lt": "left", "r": "right", "rt": "right", "bilat": "bilateral",
          "os": "left", "ou": "bilateral"}


def query_tokens(text: str) -> list[str]:
    """The words of a query, clinical notation spelt out: "w/o" is "without", a roman
    numeral after "type" or "stage" is a number ("type ii" is "type 2"), and a side
    abbreviated beside other words is the side ("l wrist" is "left wrist"). What the
    query denies is left out (_DENIED), unless nothing else is left."""
    folded = fold(text)
    for pattern, replacement in _NOTATION:
        folded = pattern.sub(replacement, folded)
    tokens = folded_words(_DENIED.sub(" ", folded))
    if all(t in STOPWORDS for t in tokens):
        tokens = folded_words(folded)
    sided = len(tokens) > 1
    return [
        _ROMAN[t] if t in _ROMAN and i and tokens[i - 1] in _NUMBERED
        else _SIDES[t] if sided and t in _SIDES
        else t
        for i, t in enumerate(tokens)
    ]


@lru_cache(maxsize=16384)  # texts: bounded, they are many
def name_key(text: str) -> tuple[str, ...]:
    """A text as a name: every word's stem, stopwords too, in order, once each, without
    filler ("unspecified", "NOS") or possessive "s": "Swimmer's ear, unspecified ear" is
    the name "swimmers ear", and "on blood thinners" another than "blood thinners"."""
    return name_and_details(bare_tokens(text))[0]


def bare_tokens(text: str) -> list[str]:
    """A text's folded words and clause marks ("," or ";"), its nonessential modifiers in
    (parentheses) and synonyms in [brackets] left out: what ``name_and_details``
    reads."""
    if "(" in text or "[" in text:
        text = _ASIDE.sub(" ", text)
    folded = fold(text)
    if not folded.isascii():
        return _BARE.findall(folded)
    if "," in folded or ";" in folded:
        folded = folded.replace(",", " , ").replace(";", " ; ")
    return folded.translate(_BARE_BREAKS).split()  # (as text.folded_words, for speed)


def plain(text: str) -> bool:
    """Whether a text holds no aside and no clause mark: then its ``bare_tokens`` are its
    words, and a reader that has them need not tokenise it again."""
    return not ("(" in text or "[" in text or "," in text or ";" in text)


_TOKEN: Final = re.compile(r"[^\W_]+")


@lru_cache(maxsize=16384)
def matched_spans(text: str, asked: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    """Where the asked words stand in ``text`` (start, end offsets), for highlighting.

    A word matches by stem; the last one also as the start of a word, as search does.
    Kept for recent titles and queries: answers served from the search cache ask for
    the same spans again.
    """
    if not asked:
        return ()
    wanted = {stem(w) for w in asked}
    last = asked[-1]
    spans = []
    for match in _TOKEN.finditer(text):
        token = fold(match.group())
        if stem(token) in wanted or token.startswith(last):
            spans.append((match.start(), match.end()))
    return tuple(spans)


def diagnosis_of(text: str) -> tuple[str, ...]:
    """The words of the diagnosis a query says was made, to the end of its clause
    ("coughing up green mucus and the doctor said it's bronchitis", "the ct showed a
    stroke", "diagnosed with emphysema"), or of the injury it says was suffered ("fell
    at the nursing home and broke his left hip"); none if it says neither. A code is for
    the diagnosis, not for the signs and symptoms that led to it (ICD-10-CM's
    guidelines), and for the injury before how or where it happened."""
    folded = fold(text)
    if (made := _DIAGNOSED.search(folded)) is not None:
        named = query_words(tuple(query_tokens(made.group(1))))
        return () if all(w in STOPWORDS for w in named) else named
    if (made := _INJURED.search(folded)) is not None:
        named = query_words(tuple(query_tokens(made.group(1))))
        return named if len(named) > 1 else ()  # the injury and what it was done to
    return ()


# What a sentence says someone said a thing is ("the doctor said the rash on my side is
# shingles"): a diagnosis, or a sign ("her ear drum is red").
_SAID_IS: Final = re.compile(
    r"\b(?:said|says|told (?:me|us|him|her|them)|thinks)\b.*?\b(?:is|was|are|were)\b"
    r"(.*?)(?=[,;.]|\b(?:but|and)\b|$)"
)


def said_to_be(text: str) -> tuple[str, ...]:
    """The words of what a query says someone said a thing is, to the end of its clause
    (stopwords out); none if it says no such thing. Only the names of conditions among
    them name a diagnosis (the engine asks search.names): "red" does not."""
    folded = fold(text)
    if (told := _SAID_IS.search(folded)) is None:
        return ()
    return tuple(w for w in query_tokens(told.group(1)) if w not in STOPWORDS)


def query_words(tokens: tuple[str, ...]) -> tuple[str, ...]:
    """The words of a query that say what is sought: stopwords out.

    A query of stopwords only ("a") is kept as typed rather than emptied.
    """
    kept = tuple(w for w in tokens if w not in STOPWORDS)
    return kept or tokens


# Spinal levels as coders write them ("l5", "c5-c6"). Titles name one vertebra by its
# ordinal and region ("fifth lumbar vertebra"; never "third cervical" alone, which is a
# trimester and the cervix). Between two levels, PCS names the joint ("cervical vertebral
# joint", "lumbosacral joint") and ICD-10-CM the region ("lumbar region").
_LEVEL: Final = re.compile(r"([ctls])(\d{1,2})")
_REGIONS: Final = {
    "c": ("cervical", 7), "t": ("thoracic", 12), "l": ("lumbar", 5), "s": ("sacral", 5),
}
_ORDINALS: Final = (
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth".split()
)
_JOINED_REGIONS: Final = {"ct": "cervicothoracic", "tl": "thoracolumbar", "ls": "lumbosacral"}


def spinal_levels(words: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Readings of the words with their spinal levels spelt out as titles say them, none
    when they name no level: "l5 compression fx" is "fifth lumbar vertebra compression
    fx"; "fusion c5 c6" is "fusion cervical vertebral joint" and "fusion cervical".
    Titles also say "at C5-C6 level": these are further readings, not the only ones."""
    levels: dict[int, re.Match[str]] = {}
    for i, word in enumerate(words):
        found = _LEVEL.fullmatch(word)
        if found and found[1] in _REGIONS and 1 <= int(found[2]) <= _REGIONS[found[1]][1]:
            levels[i] = found
    if not levels:
        return []
    if len(levels) == 1:
        (found,) = levels.values()
        spelt: list[tuple[str, ...]] = [
            (_ORDINALS[int(found[2]) - 1], _REGIONS[found[1]][0], "vertebra")
        ]
    else:
        regions = "".join(r for r in "ctls" if r in {found[1] for found in levels.values()})
        if regions in _JOINED_REGIONS:
            region: tuple[str, ...] = (_JOINED_REGIONS[regions],)
        else:
            region = tuple(_REGIONS[r][0] for r in regions)
        joint = ("lumbosacral", "joint") if regions == "ls" else (*region, "vertebral", "joint")
        spelt = [joint, region]
    first = min(levels)
    before = words[:first]
    after = tuple(w for i, w in enumerate(words[first:], first) if i not in levels)
    return [
        tuple(w for w in before if w not in names) + names + tuple(w for w in after
                                                                   if w not in names)
        for names in spelt
    ]


# Weeks of a pregnancy as people say them ("32 weeks", "12 wks"): chapter 15's titles say
# the trimester instead, which its notes define from the first day of the last period:
# the first to 14 weeks, the second to 28, the third from then until delivery.
_WEEKS: Final = frozenset({"week", "weeks", "wk", "wks"})
_TRIMESTER_STARTS: Final = ((28, "third"), (14, "second"), (0, "first"))
_LONGEST_PREGNANCY: Final = 45
_NEWBORN: Final = frozenset(
    {"born", "newborn", "baby", "babies", "infant", "neonate", "preemie", "prematurity"}
)


def trimester_weeks(words: tuple[str, ...]) -> list[tuple[str, ...]]:
    """A reading of the words with weeks of pregnancy named as their trimester ("32
    weeks pregnant": "third trimester pregnant"), none when they name no weeks. For the
    engine to try where the query names a pregnancy; not for a newborn: "born at 32
    weeks" is a gestational age, not a trimester."""
    if not _NEWBORN.isdisjoint(words):
        return []
    for i in range(len(words) - 1):
        if words[i].isdigit() and words[i + 1] in _WEEKS:
            weeks = int(words[i])
            if not 0 < weeks <= _LONGEST_PREGNANCY:
                continue
            ordinal = next(name for start, name in _TRIMESTER_STARTS if weeks >= start)
            rest = tuple(w for w in words[i + 2 :] if w not in ("trimester", ordinal))
            return [(*words[:i], ordinal, "trimester", *rest)]
    return []


# Pronouns and articles: a query that has them is said in words, as a patient tells it,
# not written as a note ("uc pancolitis w rectal bleeding").
_SPOKEN: Final = frozenset(
    "i im me my mine he his him she her we our us they their them it its you your a an the"
    .split()
)


def said(words: tuple[str, ...]) -> bool:
    """Whether a query's words (stopwords and all) are said as a sentence."""
    return not _SPOKEN.isdisjoint(words)


_HURTS: Final = frozenset({"hurt", "hurts", "hurting"})
_NOT: Final = frozenset({"not", "no", "never", "dont", "doesnt", "didnt", "wont", "without"})


def painful(words: tuple[str, ...]) -> tuple[str, ...]:
    """The words with the everyday verb of pain as the noun titles use: "my ear hurts"
    is ear pain ("Otalgia" has the term "ear pain"). Not where it is denied: "it doesn't
    hurt" is no pain at all."""
    return tuple(
        "pain" if w in _HURTS and (i == 0 or words[i - 1] not in _NOT) else w
        for i, w in enumerate(words)
    )


# How a sentence denies a sign: "no", "never", "didn't" (as typed without the apostrophe).
_DENIALS: Final = frozenset({"no", "not", "never", "didnt", "doesnt", "wasnt", "isnt", "hasnt",
                      "havent", "hadnt"})


def denied(words: tuple[str, ...]) -> tuple[str, ...]:
    """The words with a denial as titles put one: "a concussion but he didn't pass out"
    is "Concussion without loss of consciousness", "no fever" is "without fever"."""
    return tuple("without" if w in _DENIALS else w for w in words)


# Months or years ago is a history: the code set takes a heart attack four weeks old for
# an old one (I25.2), and codes what is over as a personal history (Z86, Z87).
_LONG_AGO: Final = frozenset({"month", "months", "year", "years"})
_COUNTS: Final = frozenset(
    "one two three four five six seven eight nine ten few several many".split()
)


def past(words: tuple[str, ...]) -> tuple[str, ...]:
    """The words with a time months or years ago as titles say it, "history": "a heart
    attack three months ago" is a history of one; days or weeks ago are not."""
    for i, word in enumerate(words[:-1]):
        if word in _LONG_AGO and words[i + 1] == "ago":
            counted = i > 0 and (words[i - 1].isdigit() or words[i - 1] in _COUNTS)
            start = i - 1 if counted else i
            return (*words[:start], "history", *words[i + 2 :])
    return words


_REFLEXIVE: Final = frozenset(
    {"herself", "himself", "themselves", "themself", "yourself", "ourselves"}
)


def first_person(words: tuple[str, ...]) -> tuple[str, ...]:
    """The words with a reflexive said of someone else as the lexicon's phrasings say
    it, of oneself: "my daughter has been cutting herself" is "cutting myself" (the
    self-harm), "he keeps wetting himself", "peeing myself"."""
    return tuple("myself" if w in _REFLEXIVE else w for w in words)


def content_words(words: tuple[str, ...]) -> tuple[str, ...]:
    """The words an entry must hold: everyday filler out ("feel", "day", "think": no
    title says them), unless nothing else is left."""
    kept = tuple(w for w in words if w not in EVERYDAY)
    return kept or words


@lru_cache(maxsize=16384)  # texts: bounded, they are many
def detail_stems(text: str) -> frozenset[str]:
    """The stems of the details a title states, which a query may or may not ask for.

    Stopwords and filler ("initial encounter", "unspecified site") are none; nor are the
    nonessential modifiers in parentheses and synonyms in brackets, or what a title says
    is absent or unknown: the rest of a clause after "without" ("without
    complications"), "unspecified as" or "not specified" ("unspecified as acute or
    chronic").
    """
    return frozenset(name_and_details(bare_tokens(text))[1])


# A text's words and what ends a clause: a comma, a semicolon, a parenthesis or bracket.
_CLAUSED: Final = re.compile(r"[a-z0-9]+|[,;()\[\]]")


# A side begins the site of what the title names, not of what it rules out: "Laceration
# without foreign body of left index finger" is a laceration of that finger. And "in"
# says where what is ruled out would be: "without blood in pee" rules out no pee.
_SITED: Final = frozenset({"left", "right", "bilateral", "unspecified"})


def negated_of(text: str) -> frozenset[str]:
    """The words a text names only as absent: in a clause after "without" ("reflux
    disease without esophagitis", "Cholelithiasis (without cholecystitis)"), up to the
    side of its site or an "in" (_SITED); and their stems, where no word it states has
    the same. Both, as a query may type another form of the word ("lut" for "LUTS") or
    a word whose stem a stated word shares ("esophagitis" and "esophageal" are both
    "esophag")."""
    absent: set[str] = set()
    stated: set[str] = set()
    negating = False
    before = ""
    for word in _CLAUSED.findall(fold(text)):
        if not word[0].isalnum() or (before == "of" and word in _SITED) or word == "in":
            negating = False
        if word == "without":
            negating = True
        elif word[0].isalnum() and word not in STOPWORDS:
            (absent if negating else stated).add(word)
        before = word
    absent -= stated
    if not absent:
        return frozenset()
    stems_stated = {stem(w) for w in stated}
    return frozenset(absent | {s for s in map(stem, absent) if s not in stems_stated})


def name_and_details(tokens: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The name a text's ``bare_tokens`` say (``name_key``) and the details they state
    (``detail_stems``), each stem once, in order. Read together, each word stemmed once:
    the ranker asks both of nearly every text it reads.

    The name is every word but clause marks, possessive "s" and filler; the details
    leave out stopwords too, and the rest of a clause that says what is absent or
    unknown.
    """
    name: dict[str, None] = {}
    details: dict[str, None] = {}
    skipping = False  # the rest of a clause says what is absent or unknown
    last = len(tokens) - 1
    for i, word in enumerate(tokens):
        if word in _MARKS:
            skipping = False
            continue
        neutral = word in NEUTRAL
        stemmed = ""
        if word != "s" and (not neutral or word in STOPWORDS):
            stemmed = stem(word)
            name.setdefault(stemmed, None)
        if skipping:
            continue
        following = tokens[i + 1] if i < last else ""
        if (
            word == "without"
            or (word == "unspecified" and following == "as")
            or (word == "not" and following in ("specified", "elsewhere"))
        ):
            skipping = True
        elif not neutral:
            details.setdefault(stemmed or stem(word), None)
    return tuple(name), tuple(details)
