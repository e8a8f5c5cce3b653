"""Codes a tabular note names ("see S78.-", "excludes E08-E13"), found in its text.

The lookup service lists them with a code's notes; the code pages link the ones that
have a page.
"""

from __future__ import annotations

import re

from services.lookup.domain import normalise_code

# Code references as the tabular writes them: "S78.-", "M97.0-", "E08-E13", "Z16.-".
_REFERENCE = re.compile(
    r"\b([A-Z][0-9]{2}-[A-Z][0-9][0-9A-Z]|[A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?)"
)


def reference_spans(system: str, text: str) -> list[tuple[int, int, str]]:
    """Where a note names codes: (start, end, canonical code), in order of appearance."""
    if system != "ICD10CM":
        return []
    spans = []
    for match in _REFERENCE.finditer(text):
        code = normalise_code(system, match.group(1))
        if code:
            spans.append((match.start(1), match.end(1), code))
    return spans


def references(system: str, text: str) -> list[str]:
    """Codes a note points to, canonical, in order of appearance, without repeats."""
    found: list[str] = []
    for _, _, code in reference_spans(system, text):
        if code not in found:
            found.append(code)
    return found
