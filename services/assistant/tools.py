"""CasePilot's tools: each a function over the lookup client, never lookup's internals.

Every tool returns typed values that say which codes it read, so the composer can cite
exactly what backs an answer. The offline composer and the model backend call the same
functions (see ``TOOL_SPECS`` for the model's view of them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from services.lookup.client import LookupClient
from services.lookup.values import (
    ChangePage,
    CodeDetail,
    CodeSummary,
    GemMapping,
    PcsAxisValue,
    PcsRow,
)

PCS = "ICD10PCS"
CM = "ICD10CM"
SYSTEMS = ("ICD10CM", "ICD10PCS", "HCPCS", "CPT")
EXCLUDES = ("excludes1", "excludes2")
SEQUENCING = ("use_additional_code", "code_first", "code_also")


async def search_codes(
    lookup: LookupClient, query: str, systems: list[str] | None = None,
    billable_only: bool = False, limit: int = 5,
) -> list[CodeSummary]:
    """The codes search ranks first for the words (a patient's or a clinician's)."""
    page = await lookup.search_codes(query, systems=systems, billable_only=billable_only,
                                     limit=limit)
    return page.items


async def unknown_words(lookup: LookupClient, text: str) -> list[str]:
    """The words of ``text`` (4 letters or more) that no code set holds nor spells close
    to: a search that had to ignore them answers only part of the question."""
    asked = [w for w in dict.fromkeys(re.findall(r"[a-z]+", text.lower())) if len(w) >= 4]
    return await lookup.unknown_words(asked) if asked else []


async def word_entries(lookup: LookupClient, asked: list[str]) -> list[int]:
    """How many indexed entries use each word (as typed or by stem): how much a part of
    the code sets' vocabulary it is."""
    return await lookup.word_entries(asked) if asked else []


async def read_code(
    lookup: LookupClient, system: str, code: str, as_of: date | None = None
) -> CodeDetail | None:
    """A code page: title, billable, notes (excludes, code first, use additional...),
    7th characters, PCS axes; None when the code does not exist (on ``as_of``)."""
    return await lookup.code_detail(system, code, as_of)


@dataclass(frozen=True)
class Hierarchy:
    code: CodeSummary
    ancestors: list[CodeSummary]  # the chapter first, the parent last
    children: list[CodeSummary]


async def hierarchy(lookup: LookupClient, system: str, code: str) -> Hierarchy | None:
    """Where a code stands in the tree: its ancestors and its children."""
    detail = await lookup.code_detail(system, code)
    if detail is None:
        return None
    return Hierarchy(summary(detail), detail.ancestors, detail.children)


def summary(detail: CodeDetail) -> CodeSummary:
    return CodeSummary(detail.system, detail.code, detail.title, detail.billable, detail.kind)


@dataclass(frozen=True)
class PairNote:
    kind: str  # excludes1 | excludes2
    written_on: str  # the code (or category, block) whose note it is
    text: str  # the note as the tabular words it
    excluded: str  # the code or range the note points to


@dataclass(frozen=True)
class PairCheck:
    first: CodeSummary
    second: CodeSummary
    verdict: str  # "excludes1" (not together), "excludes2" (both may be coded), "none"
    notes: list[PairNote]


async def check_pair(
    lookup: LookupClient, first: str, second: str, system: str = CM
) -> PairCheck | None:
    """Whether either code's Excludes1/Excludes2 notes (its own or inherited) point at
    the other or at a category above it. None when either code does not exist."""
    a = await lookup.code_detail(system, first)
    b = await lookup.code_detail(system, second)
    if a is None or b is None:
        return None
    notes = _excluding(a, b) + _excluding(b, a)
    verdict = "none"
    if any(n.kind == "excludes1" for n in notes):
        verdict = "excludes1"
    elif notes:
        verdict = "excludes2"
    return PairCheck(summary(a), summary(b), verdict, notes)


def _excluding(holder: CodeDetail, other: CodeDetail) -> list[PairNote]:
    family = {other.code, *(c.code for c in other.ancestors)}
    found = []
    for group in holder.notes:
        if group["kind"] not in EXCLUDES:
            continue
        for link in group.get("links", []):
            if link["code"] in family:
                found.append(PairNote(group["kind"], group["source"], link["text"], link["code"]))
    return found


# Words that pick a 7th character (or a laterality) among a code's children.
ENCOUNTER_WORDS = {
    "initial": "initial encounter", "first": "initial encounter", "active": "initial encounter",
    "subsequent": "subsequent encounter", "follow-up": "subsequent encounter",
    "followup": "subsequent encounter", "sequela": "sequela", "sequelae": "sequela",
    "late effect": "sequela",
}
FRACTURE_WORDS = ("closed", "open fracture type i or ii", "open fracture type iiia",
                  "routine healing", "delayed healing", "nonunion", "malunion")


@dataclass(frozen=True)
class Variant:
    base: CodeSummary
    chosen: CodeSummary | None  # the variant the words pick, when they pick one
    options: list[CodeSummary]  # the valid variants to choose from
    characters: list[list[str]] = field(default_factory=list)  # [char, meaning] of the 7th
    character_source: str | None = None  # the category that defines them


async def code_variant(
    lookup: LookupClient, code: str, words: str, system: str = CM
) -> Variant | None:
    """The 7th-character, encounter or laterality variant of a code that ``words``
    describe ("initial encounter", "subsequent, delayed healing", "left"). The variants
    are the code's own valid children (or siblings for laterality), never composed
    codes; None when the code does not exist."""
    detail = await lookup.code_detail(system, code)
    if detail is None:
        return None
    wanted = words.lower()
    if detail.billable and detail.seven_character and len(detail.ancestors) > 0:
        # Already complete: the variants are its siblings under the same 6-character code.
        parent = await lookup.code_detail(system, detail.ancestors[-1].code)
        options = parent.children if parent else []
    else:
        options = [c for c in detail.children if c.billable] or detail.children
    side = _side(wanted)
    if side and not any(side in o.title.lower() for o in options):
        options = [summary(detail), *detail.siblings]
    chosen = _pick(options, wanted)
    return Variant(summary(detail), chosen, options, detail.seven_character,
                   detail.seven_character_source)


def _side(words: str) -> str | None:
    for side in ("bilateral", "left", "right"):
        if re.search(rf"\b{side}\b", words):
            return side
    return None


def _pick(options: list[CodeSummary], words: str) -> CodeSummary | None:
    """The one option whose title carries every encounter, fracture and side word asked."""
    wants = [v for k, v in ENCOUNTER_WORDS.items() if re.search(rf"\b{k}\b", words)]
    wants += [w for w in ("routine healing", "delayed healing", "nonunion", "malunion")
              if w in words]
    if re.search(r"\bopen\b", words):
        wants.append("open fracture")
    if side := _side(words):
        wants.append(side)
    if not wants:
        return None
    matching = [o for o in options if all(w in o.title.lower() for w in wants)]
    if len(matching) > 1 and "open fracture" not in wants:
        # A fracture not said to be open is coded as closed (ICD-10-CM guideline I.C.19.c.1).
        closed = [o for o in matching if "open fracture" not in o.title.lower()]
        matching = closed or matching
    if len(matching) > 1 and "subsequent encounter" in wants and not any(
        w in wants for w in ("delayed healing", "nonunion", "malunion")
    ):
        routine = [o for o in matching if "routine healing" in o.title.lower()]
        matching = routine or matching
    if len(matching) > 1 and "open fracture" in wants:
        # "type I" reads as the first open-fracture type when no other is named.
        matching = sorted(matching, key=lambda o: o.code)
    return matching[0] if matching else None


@dataclass(frozen=True)
class PcsBuild:
    table: str
    code: str | None  # the complete code when the values pick exactly one valid row
    valid: bool
    row: PcsRow | None
    candidates: list[PcsRow]  # rows still matching the values given
    open_axes: dict[int, list[PcsAxisValue]]  # position -> the values still possible


async def build_pcs(lookup: LookupClient, values: dict[int, str]) -> PcsBuild:
    """A PCS code from axis values (position 1-7 -> character), checked against its
    table: which rows of the table the values leave, and the values still open."""
    chars = {int(p): v.strip().upper() for p, v in values.items() if v and v.strip()}
    table = "".join(chars.get(p, "") for p in (1, 2, 3))
    found = await lookup.pcs_table(table) if len(table) == 3 else None
    rows = found.rows if found else []
    candidates = [r for r in rows if all(r.code[p - 1] == v for p, v in chars.items())]
    open_axes: dict[int, list[PcsAxisValue]] = {}
    for position in range(4, 8):
        if position in chars:
            continue
        seen: dict[str, PcsAxisValue] = {}
        for row in candidates:
            axis = row.axes[position - 1]
            seen.setdefault(axis.value, axis)
        if seen:
            open_axes[position] = list(seen.values())
    chosen = candidates[0] if len(candidates) == 1 else None
    return PcsBuild(table, chosen.code if chosen else None,
                    chosen is not None and len(chars) == 7, chosen, candidates, open_axes)


@dataclass(frozen=True)
class RootOperation:
    section: str
    value: str
    name: str
    definition: str
    explanation: str | None
    examples: str | None
    table: str  # the table it was read from


async def root_operation(lookup: LookupClient, name: str) -> RootOperation | None:
    """A root operation's official definition, explanation and examples ("Resection",
    "Excision"...), read from the first table of that operation that search finds."""
    wanted = name.strip().lower()
    if not wanted:
        return None
    for code in await search_codes(lookup, wanted, [PCS], limit=10):
        table = await lookup.pcs_table(code.code[:3])
        if table is None or table.title.lower() != wanted:
            continue
        texts = table.notes
        definition = next((t for t in texts if not t.startswith(("Explanation:",
                                                                   "Examples:"))), "")
        explanation = next((t[len("Explanation: "):] for t in texts
                            if t.startswith("Explanation:")), None)
        examples = next((t[len("Examples: "):] for t in texts if t.startswith("Examples:")),
                        None)
        return RootOperation(table.table[0], table.table[2], table.title, definition,
                             explanation, examples, table.table)
    return None


@dataclass(frozen=True)
class Guideline:
    system: str
    id: str
    topic: str
    text: str


async def guidelines(
    lookup: LookupClient, topic: str, system: str = PCS, limit: int = 3
) -> list[Guideline]:
    """The official guidelines published with a code set that speak of ``topic``,
    those sharing the most words with it first."""
    words = {w for w in re.findall(r"[a-z0-9]+", topic.lower()) if len(w) > 2}
    scored: list[tuple[int, int, dict[str, Any]]] = []
    for item in await lookup.reference(system, "guidelines"):
        text = f"{item.get('topic', '')} {item.get('text', '')}".lower()
        score = sum(1 for w in words if w in text)
        if score:
            scored.append((-score, len(scored), item))
    return [Guideline(system, str(i.get("id", "")), str(i.get("topic", "")), str(i["text"]))
            for _, _, i in sorted(scored)[:limit]]


@dataclass(frozen=True)
class Validity:
    system: str
    code: str
    on: date
    entry: CodeSummary | None  # the code as it stood that day; None: not valid then
    release: str | None  # the release in effect that day (None: before every release)
    current: CodeSummary | None  # the code as it stands in the latest release
    history: list[dict[str, Any]]


async def validity(lookup: LookupClient, system: str, code: str, on: date) -> Validity:
    """Whether a code existed (and was billable) on a date of service, which release was
    in effect then, and the code's whole history of changes."""
    current = await lookup.code_detail(system, code)
    canonical = current.code if current else code.strip().upper()
    then = (await lookup.codes_as_of([(system, canonical)], on))[0]
    in_effect = None
    for info in await lookup.releases(system):
        if info.effective and date.fromisoformat(info.effective) <= on:
            in_effect = info.release
    return Validity(system, canonical, on, then, in_effect,
                    summary(current) if current else None,
                    current.history if current else [])


async def release_changes(
    lookup: LookupClient, system: str, since: str | None = None, until: str | None = None,
    limit: int = 20,
) -> ChangePage:
    """What a release changed (added, revised, deleted), the latest by default."""
    return await lookup.changes(system, since, until, limit=limit)


@dataclass(frozen=True)
class Crosswalk:
    mapping: GemMapping
    targets: list[tuple[CodeSummary | None, str]]  # (the code now, or None; GEM code)


async def icd9_to_icd10(
    lookup: LookupClient, icd9: str, procedure: bool | None = None
) -> list[Crosswalk]:
    """The ICD-10 codes the GEMs map an ICD-9-CM code to (diagnoses to ICD-10-CM,
    procedures to ICD-10-PCS), each checked against the loaded release."""
    systems = [CM] if procedure is False else [PCS] if procedure else [CM, PCS]
    found = []
    for system in systems:
        mapping = await lookup.gems(system, icd9)
        if mapping is None:
            continue
        targets = []
        for target in mapping.targets:
            if target.no_map:
                continue
            detail = await lookup.code_detail(system, target.code)
            targets.append((summary(detail) if detail else None, target.code))
        found.append(Crosswalk(mapping, targets))
    return found


@dataclass(frozen=True)
class Explanation:
    code: CodeSummary
    text: str | None  # the code page's plain-language description, when it has one


async def explain(lookup: LookupClient, system: str, code: str) -> Explanation | None:
    """A code in plain words: the same text as its code page's plain-language part."""
    detail = await lookup.code_detail(system, code)
    if detail is None:
        return None
    text = detail.plain_language.text
    return Explanation(summary(detail), text or None)
