"""Citations an answer can prove, and the check that keeps every other code out of it.

A citation is read from the code page (lookup client) of the latest release of its code
set; the text check finds every code-shaped word in an answer (the offline composer's or
a model's), cites the ones that exist and takes out the ones that do not.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import date

from services.assistant.domain import Citation
from services.assistant.reading import CM_TOKEN, CPT_TOKEN, HCPCS_TOKEN, PCS_TOKEN
from services.lookup.client import LookupClient
from services.lookup.values import CodeDetail, CodeSummary

RELEASES_TTL = 5.0  # seconds a composer trusts its list of latest releases
REMOVED = "[code removed: not in the loaded releases]"


class ReleaseBook:
    """The latest imported release of each code set, re-read every few seconds."""

    def __init__(self, lookup: LookupClient) -> None:
        self.lookup = lookup
        self._latest: dict[str, tuple[float, str | None]] = {}

    async def latest(self, system: str) -> str | None:
        read_at, release = self._latest.get(system, (0.0, None))
        if time.monotonic() - read_at > RELEASES_TTL:
            releases = await self.lookup.releases(system)
            dated = sorted(releases, key=lambda r: (r.effective or "", r.release))
            release = dated[-1].release if dated else None
            self._latest[system] = (time.monotonic(), release)
        return release


@dataclass
class Citer:
    """The citations of one answer, in the order the answer names them."""

    lookup: LookupClient
    book: ReleaseBook
    cited: dict[tuple[str, str], Citation] = field(default_factory=dict)

    async def cite(self, entry: CodeSummary | CodeDetail) -> Citation:
        key = (entry.system, entry.code)
        if key not in self.cited:
            release = await self.book.latest(entry.system) or "unknown"
            self.cited[key] = Citation(entry.system, entry.code, entry.title, release)
        return self.cited[key]

    async def verify(self, system: str, code: str) -> Citation | None:
        """Cite a code if it exists in the loaded release of ``system``."""
        known = self.cited.get((system, code.strip().upper()))
        if known is not None:
            return known
        found = await self.lookup.codes_as_of([(system, code.strip().upper())], date.max)
        if found[0] is None:
            # Typed in another spelling ("e1165"): the code page reads any spelling.
            detail = await self.lookup.code_detail(system, code)
            return await self.cite(detail) if detail is not None else None
        return await self.cite(found[0])

    async def cite_link(self, system: str, link: dict[str, str]) -> Citation:
        """Cite the code a note links to: the code page resolved it in the same release."""
        return await self.cite(CodeSummary(system, link["code"], link["title"], False))

    @property
    def citations(self) -> tuple[Citation, ...]:
        return tuple(self.cited.values())

    def names(self, code: str) -> bool:
        return any(c.code == code for c in self.cited.values())


# Which code set a code-shaped word may belong to, most specific shape first.
_SHAPES = ((PCS_TOKEN, "ICD10PCS"), (CM_TOKEN, "ICD10CM"), (HCPCS_TOKEN, "HCPCS"),
           (CPT_TOKEN, "CPT"))


async def check_text(
    text: str, citer: Citer, allowed: frozenset[str] = frozenset()
) -> tuple[str, list[str]]:
    """Cite every code the text names that exists; take out the ones that do not.

    ``allowed`` are words the answer may name that are not ICD-10/HCPCS/CPT codes (the
    ICD-9-CM codes a GEM lookup returned). Titles already cited are not scanned (an
    official title may hold a code-like word: "Vitamin B12 deficiency"). A bare
    3-character word that is no code ("B12", "D3") is left alone: only dotted or longer
    code-shaped words, and CPT numbers in a text that speaks of CPT, must prove they exist.
    Returns the checked text and what was taken out.
    """
    masked = text
    for citation in citer.citations:
        masked = masked.replace(citation.title, " " * len(citation.title))
    removals: list[tuple[int, int, str]] = []
    taken: set[tuple[int, int]] = set()
    speaks_cpt = bool(re.search(r"\bCPT\b", text, re.IGNORECASE))
    for pattern, system in _SHAPES:
        for match in pattern.finditer(masked):
            span = match.span(1)
            if any(s <= span[0] < e for s, e in taken):
                continue
            word = match.group(1)
            if system == "ICD10PCS" and (sum(ch.isdigit() for ch in word) < 2
                                         or not any(ch.isalpha() for ch in word)
                                         or word != word.upper()):
                continue
            if system == "CPT" and not speaks_cpt:
                continue
            if system == "ICD10CM" and word != word.upper():
                continue
            if word in allowed or word.upper() in allowed:
                taken.add(span)
                continue
            taken.add(span)
            if await _exists(citer, system, word):
                continue
            bare = system == "ICD10CM" and len(word) == 3
            if bare:
                continue
            removals.append((span[0], span[1], word))
    checked = text
    for start, end, _ in sorted(removals, reverse=True):
        checked = checked[:start] + REMOVED + checked[end:]
    return checked, [w for _, _, w in sorted(removals)]


async def _exists(citer: Citer, system: str, word: str) -> bool:
    systems = [system]
    if system == "ICD10CM" and re.fullmatch(r"[A-Z][0-9]{4}", word):
        systems.append("HCPCS")  # "J1100" reads as both
    for candidate in systems:
        if await citer.verify(candidate, word) is not None:
            return True
    return False
