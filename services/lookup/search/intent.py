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
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from services.lookup.lexicon import default_lexicon
from services.shared.search.text import stem

_ENDINGS = re.compile(
    r"[a-z]{2,}(?:ectomy|otomy|ostomy|tomy|plasty|scopy|scopic|pexy|desis|rrhaphy|centesis"
    r"|tripsy|ectomies|otomies|ostomies|plasties|scopies)$"
)
# Unambiguous PCS root operations, and the everyday words surgery is asked for with.
_PROCEDURE_WORDS = frozenset(
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
_COUNT = re.compile(r"x\d{1,2}")
# Words that make a procedure the patient's state or history rather than the thing
# done: ICD-10-CM's status (Z codes) and complication codes.
_STATE_WORDS = frozenset(
    stem(w)
    for w in (
        "absence absent complication dependence dependent displacement failed failure"
        " history hx infected infection leak malfunction presence rejection status"
    ).split()
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
