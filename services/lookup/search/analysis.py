"""Reading a lookup query: its words (clinical notation spelt out) and the code it names,
typed however coders type codes.
"""

from __future__ import annotations

import re

from services.lookup.search.documents import code_plan
from services.lookup.search.wording import MAX_QUERY_WORDS, query_tokens
from services.shared.search.model import QueryPlan
from services.shared.search.text import fold

# Anything a coder may type as a code of some system: I21.9, i219, 0DTJ4ZZ, J1100, 99213.
_CODE_LIKE = re.compile(r"[A-Z0-9]{3,7}")
# Between and around a code's characters: spaces, dots, dashes; and what a code is
# pasted or quoted with ("'E11.65'", "(I10)", "E11.9;").
_CODE_NOISE = re.compile(r"[\s.,\-_?'\"`\u2018\u2019\u201c\u201d()\[\]{}<>:;!*#]+")
# Words before the code that only say a code follows: "ICD-10 I50.9", "icd10cm: e11.9",
# "code I10", "what is the icd 10 code for e119", "cpt 99213", "dx E11.9", "diagnosis
# code E11.9", "px 0DTJ4ZZ".
_CODE_SET = re.compile(
    r"^\s*(?:(?:icd[\s\-]*(?:10|9)?(?:[\s\-]*(?:cm|pcs))?|cpt|hcpcs|codes?|what|is|the|for|of"
    r"|dx|diagnosis|diag|px|procedure)\b[\s:#]*)+"
)
# A piece of a query that no code set writes in a code: a word of three letters or more
# ("toe" in "5th toe", "htn" in "I10 htn"), or an ordinal ("2nd").
_WORD_NOT_CODE = re.compile(r"[a-z]{3,}|\d+(?:st|nd|rd|th)")
# The seventh characters of ICD-10-CM: the encounter, the healing, sequela and the like.
_SEVENTH = frozenset("ABCDEFGHJKMNPQRS")
# An ICD-10-CM code is a letter and a digit, then (after a dot) up to four more.
_CM_DOTTED = re.compile(r"[a-z0-9]\d[a-z0-9]\.[a-z0-9]{1,4}")


def _code_text(text: str) -> str:
    """The query folded, without the words saying a code follows (``_CODE_SET``)."""
    return _CODE_SET.sub("", fold(text).strip())


def code_in(text: str) -> str | None:
    """The compact code a query names, when the whole query reads as one code (typed in
    full-width characters too)."""
    folded = _code_text(text)
    pieces = _CODE_NOISE.split(folded)
    if any(_WORD_NOT_CODE.fullmatch(piece) for piece in pieces):
        return None
    compact = "".join(pieces).upper()
    if not _CODE_LIKE.fullmatch(compact) or not any(c.isdigit() for c in compact):
        return None
    return _unconfused(compact, _CM_DOTTED.fullmatch(folded.strip(" .")) is not None)


# One code as coders write it in a list: ICD-10-CM (dotted or not), ICD-10-PCS, HCPCS
# Level II, CPT (five digits, or four and a letter).
_LISTED_CODE = re.compile(
    r"[a-z]\d[a-z0-9](?:\.?[a-z0-9]{1,4})?|[0-9bcdfghx][0-9a-z]{6}|[a-z]\d{4}|\d{4}[0-9a-z]"
)
_LIST_SEPARATORS = re.compile(r"[\s,;/]+")


def codes_listed(text: str) -> tuple[str, ...]:
    """The codes of a query that lists two or more ("E11.9, I10, E78.5", pasted from a
    claim), each as typed; none for anything else. Pieces of one code ("s72 001a") are
    not a list: "001a" is no code."""
    folded = _code_text(text)
    pieces = [p.strip(".") for p in _LIST_SEPARATORS.split(folded) if p.strip(".")]
    if len(pieces) < 2 or not all(
        _LISTED_CODE.fullmatch(p) and any(c.isdigit() for c in p) for p in pieces
    ):
        return ()
    return tuple(pieces)


# A code no word looks like, among words ("0DTJ4ZZ appendectomy", "is S72.001A
# billable"): an ICD-10-CM code with its dot, or ICD-10-PCS's seven characters (no I or
# O, at least two digits). "I10 htn", "b12 deficiency" and "co2 retention" stay words.
_PLAIN_CODE = re.compile(
    r"[a-z]\d[a-z0-9]\.[a-z0-9]{1,4}|(?=(?:[a-z]*\d){2})[0-9bcdfghx][0-9a-hj-np-z]{6}"
)


def code_among(text: str) -> str | None:
    """The compact code among a query's words, when exactly one piece is plainly a code
    (``_PLAIN_CODE``)."""
    folded = _code_text(text)
    pieces = (p.strip(".") for p in _LIST_SEPARATORS.split(folded))  # (a comma splits)
    found = [p for p in pieces if _PLAIN_CODE.fullmatch(p)]
    if len(found) != 1:
        return None
    return _unconfused(found[0].replace(".", "").upper(), "." in found[0])


def _unconfused(compact: str, dotted: bool) -> str:
    """A code with the letter O typed for a zero, or a zero for the letter O.

    ICD-10-PCS uses neither O nor I (they read as 0 and 1): seven characters from a digit
    on are such a code ("1OE0XZZ"), as is one from an O then a letter, since an
    ICD-10-CM code has a digit second ("ODTJ4ZZ" is 0DTJ4ZZ). A zero does not begin an
    ICD-10-CM code, nor does an ICD-10-PCS code have a dot: "024.419" is O24.419. After
    its first letter, no ICD-10-CM, HCPCS or CPT code has an O: "I1O" is I10.
    """
    procedure = len(compact) == 7 and compact[0].isdigit()
    if procedure or (compact[0] == "O" and len(compact) > 1 and compact[1].isalpha()):
        return compact.replace("O", "0").replace("I", "1")
    if dotted and compact[0] == "0":
        return "O" + compact[1:]
    if compact[0].isalpha():
        return compact[0] + compact[1:].replace("O", "0")
    return compact


def mended(code: str) -> str | None:
    """The ICD-10-CM code meant by one typed with its placeholder X's wrong, or with the
    letter l or I for a one, or None.

    A seventh character typed without its X's: "S13.4A" is S13.4XXA, "W21.01A" W21.01XA.
    X's where no seventh character follows: "E11.9X" is E11.9 (no ICD-10-CM code ends in
    X). "F41.l" is F41.1. Only a guess: some codes of four to six characters do end in a
    letter (C83.5A), and ICD-10-PCS codes in X, so search tries it when the code as typed
    names none.
    """
    if len(code) < 3 or not code[0].isalpha():
        return None
    if (ones := code[0] + code[1:].replace("L", "1").replace("I", "1")) != code:
        return ones
    if len(code) < 4 or not code[1].isdigit():
        return None
    if len(code) <= 6 and code[-1] in _SEVENTH:
        return code[:-1].ljust(6, "X") + code[-1]
    if code.endswith("X") and len(trimmed := code.rstrip("X")) >= 3:
        return trimmed
    return None


def analyze(
    text: str,
    *,
    systems: tuple[str, ...] = (),
    billable_only: bool = False,
    chapter: str | None = None,
    window: int = 200,
    count: bool = True,
) -> QueryPlan:
    tokens = tuple(query_tokens(text)[:MAX_QUERY_WORDS])
    return code_plan(
        tokens,
        code_in(text) or code_among(text),
        systems=systems,
        billable_only=billable_only,
        chapter=chapter,
        window=window,
        count=count,
    )
