"""The offline composer: reads a question, plans tool calls, writes a cited answer.

It runs with no model. Every code it names comes from a tool result and is cited with
its release; when it cannot answer it says so and shows the nearest search results, and
it never composes a code that a tool did not return.

Longer than 400 lines on purpose: OfflineComposer is one class with a handler per kind of
question, read top-down; how it words an entry is in phrasing.py, how it reads procedure
words in procedure_words.py.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from services.assistant import procedure_words, tools
from services.assistant.citations import Citer, ReleaseBook, check_text
from services.assistant.domain import (
    Answer,
    CodeRef,
    RefusalCode,
    ToolCall,
    Topic,
)
from services.assistant.phrasing import (
    NOTE_LABELS,
    axes_lines,
    history_lines,
    kind_word,
    pairs,
    sevenths,
    system_name,
)
from services.assistant.reading import (
    SIDE_CUES,
    Reading,
    has,
    is_procedure,
    read_question,
    words,
)
from services.assistant.scope import clinical_share, content_words, is_clinical
from services.lookup.client import LookupClient
from services.lookup.values import CodeDetail, CodeSummary

CM, PCS = tools.CM, tools.PCS
OUT_OF_SCOPE_MESSAGE = (
    "I can only help with medical coding: ICD-10-CM diagnoses, ICD-10-PCS procedures, "
    "HCPCS and CPT codes, their notes, guidelines and changes. Ask me about a condition, "
    "a procedure or a code."
)


class Composer(Protocol):
    name: str

    async def compose(self, question: str, about: CodeRef | None, history: list[Topic],
                      progress: Progress | None = None) -> Answer: ...


Progress = Callable[[str], Awaitable[None]]  # told each tool's name as it is called


@dataclass
class Work:
    """One answer being composed: the tools called and the citations gathered."""

    lookup: LookupClient
    citer: Citer
    progress: Progress | None
    calls: list[ToolCall] = field(default_factory=list)
    allowed: set[str] = field(default_factory=set)  # ICD-9 codes a GEM returned

    async def call(self, name: str, fn: Callable[..., Awaitable[Any]], *args: Any,
                   **kwargs: Any) -> Any:
        arguments = {f"arg{i}": _json(a) for i, a in enumerate(args)}
        arguments.update({k: _json(v) for k, v in kwargs.items()})
        self.calls.append(ToolCall(name, arguments))
        if self.progress is not None:
            await self.progress(name)
        return await fn(self.lookup, *args, **kwargs)

    async def cite(self, entry: CodeSummary | CodeDetail) -> str:
        await self.citer.cite(entry)
        return f"{entry.code} {entry.title}"


def _json(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return value


@dataclass
class Draft:
    lines: list[str]
    topic: Topic
    unsure: bool = False
    refusal: RefusalCode | None = None


class OfflineComposer:
    """Answers the common kinds of coding question from the tools alone."""

    name = "offline"

    def __init__(self, lookup: LookupClient, book: ReleaseBook | None = None) -> None:
        self.lookup = lookup
        self.book = book or ReleaseBook(lookup)

    async def in_scope(self, question: str, about: CodeRef | None = None) -> bool:
        """Whether a question opening a conversation is about coding (see
        services.assistant.scope), decided the way ``compose`` decides it, so an
        out-of-scope question is refused before it is metered."""
        reading = read_question(question, about=about is not None)
        if _plainly_off_topic(reading):
            return False
        if _coding_intent(reading) or about is not None or reading.kind not in (
                "condition", "pcs"):
            return True
        work = Work(self.lookup, Citer(self.lookup, self.book), None)
        results = await self._search(work, reading.kind, reading.subject)
        return bool(results) and is_clinical(
            await self._clinical_share(work, reading.subject, results[0]))

    async def compose(self, question: str, about: CodeRef | None, history: list[Topic],
                      progress: Progress | None = None) -> Answer:
        work = Work(self.lookup, Citer(self.lookup, self.book), progress)
        reading = read_question(question, has_history=bool(history), about=about is not None)
        draft = await self._draft(work, reading, about, history)
        text = "\n".join(draft.lines)
        checked, removed = await check_text(text, work.citer, frozenset(work.allowed))
        return Answer(checked, work.citer.citations, tuple(work.calls), draft.topic,
                      self.name, draft.refusal, tuple(removed), unsure=draft.unsure)

    async def _draft(self, work: Work, reading: Reading, about: CodeRef | None,
                     history: list[Topic]) -> Draft:
        if _plainly_off_topic(reading):
            return _out_of_scope()
        handlers: dict[str, Callable[..., Awaitable[Draft]]] = {
            "icd9": self._icd9, "pair": self._pair, "excludes": self._excludes,
            "sequencing": self._sequencing, "billable": self._billable, "date": self._date,
            "seventh": self._seventh, "side": self._seventh, "hierarchy": self._hierarchy,
            "explain": self._explain, "root_operation": self._root_operation,
            "guideline": self._guideline, "follow_up": self._follow_up, "pcs": self._pcs,
            "condition": self._condition,
        }
        return await handlers[reading.kind](work, reading, about, history)

    # --- codes named in the question -------------------------------------------------

    async def _named(self, work: Work, reading: Reading, about: CodeRef | None
                     ) -> tuple[list[CodeDetail], list[str]]:
        """The codes the question names (or the page it was asked from), read; and the
        code-shaped words that are no code."""
        found: list[CodeDetail] = []
        missing: list[str] = []
        for code in reading.pcs_codes:
            detail = await work.call("read_code", tools.read_code, PCS, code)
            (found.append(detail) if detail else missing.append(code))
        for code in reading.codes:
            detail = await work.call("read_code", tools.read_code, CM, code)
            if detail is None and re.fullmatch(r"[A-Za-z][0-9]{4}", code):
                detail = await work.call("read_code", tools.read_code, "HCPCS", code)
            if detail is not None:
                found.append(detail)
            elif not (len(code) == 3 and "." not in code and not code[1:].isdigit()):
                missing.append(code)
        if not found and about is not None:
            detail = await work.call("read_code", tools.read_code, about.system, about.code)
            if detail is not None:
                found.append(detail)
        return found, missing

    def _missing_lines(self, missing: list[str]) -> list[str]:
        if not missing:
            return []
        many = len(missing) > 1
        return [f"{'Some codes' if many else 'A code'} you gave {'are' if many else 'is'} "
                "not in any loaded release (ICD-10-CM, ICD-10-PCS, HCPCS, CPT), so I "
                "cannot cite or confirm it. Check the spelling, or search for the "
                "condition or procedure instead."]

    async def _no_code(self, work: Work, reading: Reading, missing: list[str],
                       history: list[Topic]) -> Draft:
        lines = self._missing_lines(missing) or [
            "Which code do you mean? Give it with the question (e.g. E11.65), or ask from "
            "its code page."]
        subject = reading.subject
        for code in missing:
            subject = subject.replace(code, " ")
        if words(subject) and not reading.codes:
            lines += await self._nearest(work, subject)
        return Draft(lines, Topic(reading.kind), unsure=True)

    # --- the kinds ---------------------------------------------------------------------

    async def _each(self, kind: str, work: Work, reading: Reading, about: CodeRef | None,
                    history: list[Topic],
                    write: Callable[[Work, CodeDetail, Reading], Awaitable[list[str]]]
                    ) -> Draft:
        """An answer about each code the question names, one ``write`` per code."""
        found, missing = await self._named(work, reading, about)
        if not found:
            return await self._no_code(work, reading, missing, history)
        lines = []
        for detail in found:
            lines += await write(work, detail, reading)
        lines += self._missing_lines(missing)
        return Draft(lines, _topic(kind, found))

    async def _billable(self, work: Work, reading: Reading, about: CodeRef | None,
                        history: list[Topic]) -> Draft:
        return await self._each("billable", work, reading, about, history, self._is_billable)

    async def _is_billable(self, work: Work, detail: CodeDetail, reading: Reading
                           ) -> list[str]:
        head = await work.cite(detail)
        if detail.billable:
            return [f"Yes: {head} is billable: a complete, valid "
                    f"{system_name(detail.system)} code that can be reported on a claim."]
        lines = [f"No: {head} is not billable. It is a {kind_word(detail)} and needs more "
                 "characters to be reported."]
        choices = [c for c in detail.children if c.billable][:6] or detail.children[:6]
        if choices:
            lines.append("Report one of the codes under it, for example:")
            for child in choices:
                lines.append(f"- {await work.cite(child)}"
                             + ("" if child.billable else " (needs more characters)"))
        if detail.seven_character:
            lines.append(f"Codes here take a 7th character ({sevenths(detail)}).")
        return lines

    async def _explain(self, work: Work, reading: Reading, about: CodeRef | None,
                       history: list[Topic]) -> Draft:
        return await self._each("explain", work, reading, about, history, self._explained)

    async def _explained(self, work: Work, detail: CodeDetail, reading: Reading) -> list[str]:
        explained = await work.call("explain", tools.explain, detail.system, detail.code)
        head = await work.cite(detail)
        lines = [f"{head} ({system_name(detail.system)}, "
                 f"{'billable' if detail.billable else 'not billable'})."]
        if explained and explained.text:
            lines.append(explained.text)
        if detail.system == PCS:
            lines += axes_lines(detail)
        return lines

    async def _excludes(self, work: Work, reading: Reading, about: CodeRef | None,
                        history: list[Topic]) -> Draft:
        return await self._each("excludes", work, reading, about, history, self._excluded)

    async def _excluded(self, work: Work, detail: CodeDetail, reading: Reading) -> list[str]:
        only = ("excludes1",) if has(reading.text, "excludes1", "excludes 1") else (
            ("excludes2",) if has(reading.text, "excludes2", "excludes 2") else tools.EXCLUDES)
        notes = await self._note_lines(work, detail, only)
        return [f"{await work.cite(detail)}:", *(notes or [
            "It has no Excludes notes, on itself or on the categories, blocks and chapter "
            "above it."])]

    async def _sequencing(self, work: Work, reading: Reading, about: CodeRef | None,
                          history: list[Topic]) -> Draft:
        return await self._each("sequencing", work, reading, about, history, self._sequenced)

    async def _sequenced(self, work: Work, detail: CodeDetail, reading: Reading) -> list[str]:
        notes = await self._note_lines(work, detail, tools.SEQUENCING)
        return [f"{await work.cite(detail)}:", *(notes or [
            "No code first, use additional code or code also notes apply to it."])]

    async def _note_lines(self, work: Work, detail: CodeDetail, kinds: tuple[str, ...]
                          ) -> list[str]:
        lines: list[str] = []
        for kind in kinds:
            groups = [g for g in detail.notes if g["kind"] == kind]
            if not groups:
                continue
            lines.append(f"{NOTE_LABELS.get(kind, kind)}:")
            for group in groups:
                where = "" if group["source"] == detail.code else f" (on {group['source']})"
                for text in group["notes"]:
                    lines.append(f"- {text}{where}")
                for link in group.get("links", []):
                    await work.citer.cite_link(detail.system, link)
        return lines

    async def _pair(self, work: Work, reading: Reading, about: CodeRef | None,
                    history: list[Topic]) -> Draft:
        found, missing = await self._named(work, reading, about)
        if len(found) < 2:
            draft = await self._no_code(work, reading, missing, history)
            draft.lines.insert(0, "I need two valid codes to check them against each other.")
            return draft
        first, second = found[0], found[1]
        check = await work.call("check_pair", tools.check_pair, first.code, second.code,
                                first.system)
        a, b = await work.cite(first), await work.cite(second)
        lines = []
        if check is None or check.verdict == "none":
            lines.append(f"Yes, as far as the tabular's notes go: neither {a} nor {b} has an "
                         "Excludes1 or Excludes2 note pointing at the other (or at a "
                         "category above it). Code both when the record supports both, "
                         "following any code first / use additional code notes.")
        elif check.verdict == "excludes1":
            lines.append(f"No: an Excludes1 note means the two are not coded together: {a}; "
                         f"{b}.")
        else:
            lines.append(f"Yes, when both conditions are present: the note between {a} and "
                         f"{b} is an Excludes2 (not included here), which allows both.")
        for note in check.notes if check else []:
            lines.append(f"- {note.kind.capitalize()} on {note.written_on}: \"{note.text}\"")
            await work.citer.verify(first.system, note.excluded)
        return Draft(lines, _topic("pair", found))

    async def _date(self, work: Work, reading: Reading, about: CodeRef | None,
                    history: list[Topic]) -> Draft:
        found, missing = await self._named(work, reading, about)
        if not found:
            if missing and reading.day is not None:
                lines = [*self._missing_lines(missing),
                         "It is not a code in any release loaded here, on that date or later."]
                return Draft(lines, Topic("date"), unsure=True)
            return await self._no_code(work, reading, missing, history)
        lines = []
        for detail in found:
            head = await work.cite(detail)
            if reading.day is not None:
                valid = await work.call("validity", tools.validity, detail.system,
                                        detail.code, reading.day)
                on = reading.day.isoformat()
                if valid.entry is not None:
                    state = "billable" if valid.entry.billable else "valid as a heading only " \
                        "(not billable)"
                    lines.append(f"Yes: {head} was in effect on {on} ({state}), under "
                                 f"{system_name(detail.system)} release {valid.release}.")
                elif valid.release is None:
                    first = await self._first_release(work, detail.system)
                    lines.append(f"I cannot confirm {head} for {on}: the earliest "
                                 f"{system_name(detail.system)} release loaded here takes "
                                 f"effect {first}, after that date. Check the release in "
                                 "effect then.")
                else:
                    lines.append(f"No: {head} was not in release {valid.release}, in "
                                 f"effect on {on}.")
            lines += history_lines(detail)
        return Draft(lines, _topic("date", found))

    async def _first_release(self, work: Work, system: str) -> str:
        releases = await work.lookup.releases(system)
        dates = sorted(r.effective for r in releases if r.effective)
        return dates[0] if dates else "unknown"

    async def _seventh(self, work: Work, reading: Reading, about: CodeRef | None,
                       history: list[Topic]) -> Draft:
        found, missing = await self._named(work, reading, about)
        if not found:
            return await self._no_code(work, reading, missing, history)
        return await self._variant(work, found[0], reading.text, "seventh")

    async def _variant(self, work: Work, detail: CodeDetail, asked: str, kind: str) -> Draft:
        variant = await work.call("code_variant", tools.code_variant, detail.code, asked,
                                  detail.system)
        lines = []
        if variant is not None and variant.chosen is not None:
            lines.append(f"{await work.cite(variant.chosen)}.")
            if variant.characters:
                lines.append(f"7th characters of {variant.character_source}: "
                             f"{pairs(variant.characters)}.")
            await work.cite(detail)
            return Draft(lines, Topic(kind, "", (CodeRef(variant.chosen.system,
                                                         variant.chosen.code),)))
        lines.append(f"I could not tell which variant of {await work.cite(detail)} you mean. "
                     "The valid ones are:")
        for option in (variant.options if variant else [])[:12]:
            lines.append(f"- {await work.cite(option)}")
        return Draft(lines, _topic(kind, [detail]), unsure=True)

    async def _hierarchy(self, work: Work, reading: Reading, about: CodeRef | None,
                         history: list[Topic]) -> Draft:
        found, missing = await self._named(work, reading, about)
        if not found:
            return await self._no_code(work, reading, missing, history)
        detail = found[0]
        tree = await work.call("hierarchy", tools.hierarchy, detail.system, detail.code)
        lines = [f"{await work.cite(detail)} sits under:"]
        for ancestor in tree.ancestors if tree else []:
            lines.append(f"- {await work.cite(ancestor)}")
        if tree and tree.children:
            lines.append("Codes under it:")
            for child in tree.children[:15]:
                lines.append(f"- {await work.cite(child)}")
        return Draft(lines, _topic("hierarchy", found))

    async def _icd9(self, work: Work, reading: Reading, about: CodeRef | None,
                    history: list[Topic]) -> Draft:
        lines: list[str] = []
        codes: list[CodeRef] = []
        procedure = None
        if has(reading.text, "procedure*", "pcs", "surgery", "operation"):
            procedure = True
        elif has(reading.text, "diagnosis", "diagnoses", "dx", "icd-10-cm", "condition"):
            procedure = False
        for icd9 in reading.icd9:
            kind = procedure
            if kind is None and re.fullmatch(r"\d{2}(\.\d{1,2})?", icd9):
                kind = True  # two digits before the dot: a procedure
            crosswalks = await work.call("icd9_to_icd10", tools.icd9_to_icd10, icd9, kind)
            if not crosswalks and kind is not None:
                crosswalks = await work.call("icd9_to_icd10", tools.icd9_to_icd10, icd9, None)
            if not crosswalks:
                lines.append(f"The GEMs have no entry for ICD-9-CM {icd9}: check the code "
                             "(diagnoses have 3 digits before the dot, procedures 2).")
                continue
            for walk in crosswalks:
                work.allowed.add(walk.mapping.icd9)
                system = system_name(walk.mapping.system)
                lines.append(f"ICD-9-CM {walk.mapping.icd9} ({walk.mapping.description}) maps "
                             f"to {system} through the GEMs ({walk.mapping.release}):")
                for current, gem_code in walk.targets:
                    target = next(t for t in walk.mapping.targets if t.code == gem_code)
                    flags = ", ".join(f for f, on in (("approximate", target.approximate),
                                                      ("part of a combination",
                                                       target.combination)) if on)
                    if current is None:
                        lines.append(f"- a code no longer in the loaded {system} release: "
                                     "search the condition instead")
                        continue
                    lines.append(f"- {await work.cite(current)}"
                                 + (f" ({flags})" if flags else "")
                                 + ("" if current.billable else " (not billable: pick a "
                                    "code under it)"))
                    codes.append(CodeRef(current.system, current.code))
            lines.append("GEMs are a translation aid: confirm the code against the record "
                         "and the tabular.")
        return Draft(lines or ["Which ICD-9-CM code? Give it like 250.00 (diagnosis) or "
                               "47.01 (procedure)."], Topic("icd9", "", tuple(codes)),
                     unsure=not codes)

    async def _root_operation(self, work: Work, reading: Reading, about: CodeRef | None,
                              history: list[Topic]) -> Draft:
        asked = [w for w in words(reading.text) if w not in {"root", "operation", "what",
                                                             "is", "the", "a", "of", "pcs",
                                                             "define", "definition", "does",
                                                             "mean", "in", "icd", "10"}]
        for word in asked:
            op = await work.call("root_operation", tools.root_operation, word)
            if op is not None:
                lines = [f"Root operation {op.name} (character {op.value} of the Medical and "
                         f"Surgical section): {op.definition}"]
                if op.explanation:
                    lines.append(f"Explanation: {op.explanation}")
                if op.examples:
                    lines.append(f"Examples: {op.examples}")
                return Draft(lines, Topic("root_operation", op.name))
        return Draft(["I could not find that root operation. The Medical and Surgical "
                      "section's root operations include Excision, Resection, Drainage, "
                      "Repair, Replacement, Insertion, Inspection and Bypass."],
                     Topic("root_operation"), unsure=True)

    async def _guideline(self, work: Work, reading: Reading, about: CodeRef | None,
                         history: list[Topic]) -> Draft:
        system = CM if has(reading.text, "diagnos*", "icd-10-cm", "cm") else PCS
        found = await work.call("guidelines", tools.guidelines, reading.subject or reading.text,
                                system)
        if not found and system == CM:
            found = await work.call("guidelines", tools.guidelines,
                                    reading.subject or reading.text, PCS)
        if not found:
            return Draft(["I found no official guideline on that in the guidelines loaded "
                          "here (the ICD-10-PCS guidelines)."], Topic("guideline"), unsure=True)
        lines = []
        for item in found:
            lines.append(f"{system_name(item.system)} guideline {item.id} ({item.topic}): "
                         f"{item.text}")
        return Draft(lines, Topic("guideline", reading.subject))

    # --- words, not codes ----------------------------------------------------------------

    async def _condition(self, work: Work, reading: Reading, about: CodeRef | None,
                         history: list[Topic], query: str | None = None) -> Draft:
        subject = query or reading.subject
        if not words(subject):
            return Draft(["Which condition or procedure? Describe it in a few words (a "
                          "patient's or a clinician's), or give a code."],
                         Topic("condition"), unsure=True)
        results = await self._search(work, "condition", subject)
        share = await self._clinical_share(work, subject, results[0]) if results else 0.0
        if not is_clinical(share) and not _coding_intent(reading):
            return _out_of_scope()
        unknown = (await work.call("unknown_words", tools.unknown_words, subject)
                   if results else [])
        if not results or unknown:
            lines = ["I am not sure which code fits; I will not guess."]
            if unknown:
                lines[0] = (f"I am not sure which code fits: no code set knows "
                            f"{', '.join(repr(w) for w in unknown)}; I will not guess.")
            lines += await self._nearest(work, subject, results)
            return Draft(lines, Topic("condition", subject), unsure=True)
        best = results[0]
        if not share:  # a code asked for, but nothing asked is clinical ("modifier 25")
            lines = ["I am not sure which code fits: no code found matches what you "
                     "describe; I will not guess."]
            lines += await self._nearest(work, subject, results)
            return Draft(lines, Topic("condition", subject), unsure=True)
        detail = await work.call("read_code", tools.read_code, best.system, best.code)
        lines = [f"{await work.cite(best)}.", ""]
        if detail is not None:
            extra = await self._note_lines(work, detail, ("use_additional_code", "code_first"))
            lines[1:] = extra[:8] or []
        others = [r for r in results[1:4]]
        if others:
            lines.append("Also consider, if the record says so:")
            for other in others:
                lines.append(f"- {await work.cite(other)}")
        return Draft([line for line in lines if line],
                     Topic("condition", subject, (CodeRef(best.system, best.code),)))

    async def _search(self, work: Work, kind: str, subject: str) -> list[CodeSummary]:
        """The candidates for a condition (billable ICD-10-CM codes first, any code
        else) or a procedure (billable ICD-10-PCS codes)."""
        if kind == "pcs":
            found: list[CodeSummary] = await work.call("search_codes", tools.search_codes,
                                                       subject, [PCS], True, 25)
            return found
        found = await work.call("search_codes", tools.search_codes, subject, [CM], True, 5)
        return found or await work.call("search_codes", tools.search_codes, subject, None,
                                        False, 5)

    async def _clinical_share(self, work: Work, subject: str, best: CodeSummary) -> float:
        """How much of the question is clinical (see services.assistant.scope)."""
        content = content_words(subject)
        entries = await work.call("word_entries", tools.word_entries, content)
        return clinical_share(content, entries, best.title)

    async def _nearest(self, work: Work, subject: str,
                       results: list[CodeSummary] | None = None) -> list[str]:
        if results is None:
            results = await work.call("search_codes", tools.search_codes, subject, None,
                                      False, 5)
        if not results:
            return ["Search found nothing close to those words."]
        lines = ["The nearest search results (check each against the record):"]
        for result in results[:5]:
            lines.append(f"- {await work.cite(result)}")
        return lines

    async def _pcs(self, work: Work, reading: Reading, about: CodeRef | None,
                   history: list[Topic], query: str | None = None) -> Draft:
        subject = query or reading.subject
        results = await self._search(work, "pcs", subject)
        if not _coding_intent(reading) and not (
                results and is_clinical(await self._clinical_share(work, subject, results[0]))):
            return _out_of_scope()
        if not results:
            lines = ["I could not find that procedure in ICD-10-PCS; I will not guess."]
            return Draft(lines + await self._nearest(work, subject), Topic("pcs", subject),
                         unsure=True)
        approach = procedure_words.approach(subject)
        operations = procedure_words.operations(subject)
        ranked = sorted(
            enumerate(results),
            key=lambda item: (
                approach is not None and item[1].code[4] != approach,
                bool(operations) and item[1].code[2] not in operations,
                item[1].code[5:] != "ZZ"
                and not procedure_words.names_device(subject, item[1].title),
                item[0],
            ),
        )
        best = ranked[0][1]
        detail = await work.call("read_code", tools.read_code, PCS, best.code)
        build = await work.call("build_pcs", tools.build_pcs,
                                {i + 1: ch for i, ch in enumerate(best.code[:4])})
        lines = [f"{await work.cite(best)}."]
        if detail is not None:
            lines += axes_lines(detail)
        approaches = build.open_axes.get(5, [])
        if approach is None and len(approaches) > 1:
            lines.append("The words do not say the approach; the table allows: "
                         + "; ".join(f"{a.value} {a.meaning}" for a in approaches)
                         + ". Change the 5th character to match the operative report.")
        if any(row.code == best.code for row in build.candidates):
            lines.append(f"Checked against table {build.table}: a valid row.")
        alternatives = [r for _, r in ranked[1:3] if r.code != best.code]
        if alternatives:
            lines.append("Other codes close to the words:")
            for alt in alternatives:
                lines.append(f"- {await work.cite(alt)}")
        return Draft(lines, Topic("pcs", subject, (CodeRef(PCS, best.code),)),
                     unsure=approach is None and len(approaches) > 1)

    async def _follow_up(self, work: Work, reading: Reading, about: CodeRef | None,
                         history: list[Topic]) -> Draft:
        last = history[-1]
        previous = [ref for ref in last.codes]
        text = reading.text
        if previous and (has(text, *SIDE_CUES) or has(text, "initial", "subsequent",
                                                          "sequela", "encounter", "7th")):
            detail = await work.call("read_code", tools.read_code, previous[0].system,
                                     previous[0].code)
            if detail is not None:
                return await self._variant(work, detail, text, last.kind)
        if previous:
            added = await self._additional(work, previous, reading)
            if added is not None:
                return added
        combined = f"{last.query} {reading.subject}".strip()
        if last.kind == "pcs" or is_procedure(reading.text):
            return await self._pcs(work, reading, about, history, query=combined)
        return await self._condition(work, reading, about, history, query=combined)

    async def _additional(self, work: Work, previous: list[CodeRef], reading: Reading
                          ) -> Draft | None:
        """A follow-up the previous codes' own notes answer: "and if they use insulin?"
        matches "use additional code ... insulin (Z79.4)" on E11."""
        asked = {_stem(w) for w in words(reading.subject) if len(w) > 2}
        if not asked:
            return None
        details = []
        matches: list[tuple[str, dict[str, Any]]] = []
        for ref in previous:
            detail = await work.call("read_code", tools.read_code, ref.system, ref.code)
            if detail is None:
                continue
            details.append(detail)
            for group in detail.notes:
                if group["kind"] not in (*tools.SEQUENCING, "inclusion_terms"):
                    continue
                for link in group.get("links", []):
                    # "non-insulin antidiabetic drugs" does not speak of insulin.
                    said = {_stem(w) for w in words(re.sub(r"\bnon-\w+", " ", link["text"]))}
                    if asked & said:
                        matches.append((group["kind"], link))
        if not matches:
            return None
        lines = []
        for detail in details:
            lines.append(f"Keep {await work.cite(detail)}.")
        added: list[CodeRef] = []
        for kind, link in matches:
            target = await work.citer.cite_link(details[0].system, link)
            if target is None or any(r.code == target.code for r in added):
                continue
            added.append(CodeRef(target.system, target.code))
            label = NOTE_LABELS.get(kind, kind).lower()
            lines.append(f"Add {target.code} {target.title}: the {label} note "
                         f"says \"{link['text']}\".")
        if not added:
            return None
        codes = tuple(CodeRef(d.system, d.code) for d in details) + tuple(added)
        return Draft(lines, Topic("condition", "", codes))


def _plainly_off_topic(reading: Reading) -> bool:
    return reading.off_topic and not reading.coding_words


def _coding_intent(reading: Reading) -> bool:
    """The question speaks of coding, or follows one up in a conversation."""
    return reading.coding_words or reading.follow_up


def _out_of_scope() -> Draft:
    return Draft([OUT_OF_SCOPE_MESSAGE], Topic("out_of_scope"), refusal=RefusalCode.OUT_OF_SCOPE)


def _stem(word: str) -> str:
    return word[:5]











def _topic(kind: str, found: list[CodeDetail]) -> Topic:
    return Topic(kind, "", tuple(CodeRef(d.system, d.code) for d in found))
