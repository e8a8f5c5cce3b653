"""Which of a search's candidates are ranked ahead of the rest, before ranking.

The ranker weighs every query word alike, so where few entries hold every word, an
entry holding three of four can outscore one holding all four, and a thousand entries
saying "disease" can bury the one saying "Kawasaki". The engine (search.engine) lists a
first group of candidates ahead of the rest, each group ranked on its own:

- the entries holding every word, where a few do;
- where none does, what the backend found for the rarer words it was sent ("kawasaki
  disease" is the entry saying "Kawasaki"), but not entries of a kind the query does
  not ask for (scoring.held_back), and with any entry holding more of the words.
"""

from __future__ import annotations

from dataclasses import replace

from services.lookup.search.gathering import Found
from services.lookup.search.matching import Query
from services.lookup.search.scoring import held_back, holds, missing
from services.shared.search.model import QueryPlan


def holding_first(found: Found, asked: tuple[str, ...], corrected: bool) -> Found:
    """``found`` with the entries holding every word first, and how many they are
    (``Found.complete``); ``corrected``: the last word was corrected, so it is whole.

    A backend is not sent the common words (gathering._selective), so what it finds for
    "dog bite right hand" ("Bitten by dog", three codes) need not hold "right" or
    "hand": taking those as holding every word, entries missing one ("Open bite of
    right hand") were never looked at.
    """
    if not found.unsent:
        return replace(found, complete=len(found.documents))
    last = asked[-1]
    prefix = last if last in found.unsent and not corrected else ""
    unsent = tuple(found.unsent)
    found, holding = _first(found, [holds(d, unsent, prefix=prefix) for d in found.documents])
    return replace(found, complete=holding)


def asked_for_first(found: Found, plan: QueryPlan, query: Query) -> tuple[Found, int]:
    """``found`` with the entries of a kind the query asks for first
    (scoring.held_back), and how many they are: "fell off a ladder and broke my wrist"
    finds the fall for its rarer words, and the fall's code follows the fracture's."""
    return _first(found, [not held_back(plan, query, d) for d in found.documents])


def _first(found: Found, chosen: list[bool]) -> tuple[Found, int]:
    """``found`` with the chosen documents first, each part in its order, and how many
    were chosen."""
    first = [d for d, c in zip(found.documents, chosen, strict=True) if c]
    rest = [d for d, c in zip(found.documents, chosen, strict=True) if not c]
    return replace(found, documents=first + rest), len(first)


def holding_more_first(
    found: Found, first: int, asked: tuple[str, ...], corrected: bool
) -> tuple[Found, int]:
    """``found`` with the entries holding more of the words than any of its ``first``
    (what the backend found for the rarer words, none holding all) moved among those,
    and how many the first are now.

    The rarer words are not always the better part of a query: for "I burned my hand on
    the stove" the backend finds "Contact with hot stove", holding one of the three
    words, and the burns of the hand, holding two, are among the entries added after.
    """
    prefix = asked[-1] if not corrected else ""
    lacking = [missing(d, asked, prefix=prefix) for d in found.documents]
    fewest = min(lacking[:first])
    ahead = [d for d, n in zip(found.documents[first:], lacking[first:], strict=True)
             if n < fewest]
    if not ahead:
        return found, first
    moved = {d.doc_id for d in ahead}
    documents = [*found.documents[:first], *ahead,
                 *(d for d in found.documents[first:] if d.doc_id not in moved)]
    return replace(found, documents=documents), first + len(ahead)
