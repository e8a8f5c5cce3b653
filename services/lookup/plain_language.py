"""A code described in plain words, generated from its own official data.

Nothing here is invented: every sentence restates the code's title, its notes, its
7th-character table or its ICD-10-PCS axis meanings and definitions, with the code
set's own conventions spelled out (NOS, NEC, Excludes1/Excludes2, "code first", the
placeholder X) and the abbreviations its titles use expanded. The web page's "plain
language" section, ``CodePage.plainLanguage`` in GraphQL, and the assistant's "explain a
code" tool all read :func:`describe`, so they say exactly the same thing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.lookup.values import CodeDetail

SYSTEM_NAMES = {
    "ICD10CM": "ICD-10-CM",
    "ICD10PCS": "ICD-10-PCS",
    "HCPCS": "HCPCS Level II",
    "CPT": "CPT",
}

# Abbreviations the official titles and notes use, with their meaning. The first two are
# the tabular's own conventions (ICD-10-CM Official Guidelines, section I.A.5-6); the
# rest are written out where the code sets themselves write them out.
ABBREVIATIONS: dict[str, str] = {
    "NOS": "not otherwise specified",
    "NEC": "not elsewhere classified",
    "HIV": "human immunodeficiency virus",
    "STEMI": "ST elevation myocardial infarction",
    "NSTEMI": "non-ST elevation myocardial infarction",
    "NIHSS": "National Institutes of Health Stroke Scale",
    "BMI": "body mass index",
    "NSAID": "nonsteroidal anti-inflammatory drug",
    "HELLP": "hemolysis, elevated liver enzymes and low platelet count",
    "HPV": "human papillomavirus",
    "COVID-19": "coronavirus disease 2019",
    "SIRS": "systemic inflammatory response syndrome",
    "PSA": "prostate specific antigen",
    "LSD": "lysergic acid diethylamide",
    "DNA": "deoxyribonucleic acid",
    "SCID": "severe combined immunodeficiency",
    "ADEM": "acute disseminated encephalomyelitis",
    "LDH": "lactic acid dehydrogenase",
    "G6PD": "glucose-6-phosphate dehydrogenase",
    "ATV": "all-terrain vehicle",
    "IED": "improvised explosive device",
    "WMD": "weapon of mass destruction",
    "MRSA": "methicillin resistant Staphylococcus aureus",
    "MSSA": "methicillin susceptible Staphylococcus aureus",
    "tPA": "tissue plasminogen activator",
    "rtPA": "recombinant tissue plasminogen activator",
    "w/": "with",
    "w/o": "without",
}
_ABBREVIATION = re.compile(
    r"(?<![\w/])(" + "|".join(re.escape(a) for a in sorted(ABBREVIATIONS, key=len, reverse=True))
    + r")(?![\w/-])"
)
_TRAILING_NOS = re.compile(r"(?<![,(])\s+(NOS|NEC)\b")

# What each instructional note means, in plain words (ICD-10-CM Official Guidelines,
# section I.A.12-17): how the list is introduced, and what follows from it.
NOTE_MEANINGS: dict[str, tuple[str, str]] = {
    "excludes1": ("Never reported with this code (Excludes1)",
                  "A code from this list and this code are not reported together."),
    "excludes2": ("Not included in this code (Excludes2)",
                  "When the patient also has one of these, it is coded separately, and both "
                  "codes may be reported."),
    "code_first": ("Code first", "That code is listed before this one."),
    "use_additional_code": ("Use an additional code", "It is listed after this one."),
    "code_also": ("Code also", "The order of the codes depends on the circumstances."),
}
# Notes written on these levels apply to thousands of codes; the page lists them, the
# description keeps to what is written on the code and its category.
_BROAD = ("chapter", "block")

# The axes of an ICD-10-PCS code after the first three, by section (ICD-10-PCS Official
# Guidelines and reference manual): what positions 4 to 7 mean there.
PCS_AXES: dict[str, tuple[str, str, str, str]] = {
    "0": ("body part", "approach", "device", "qualifier"),
    "1": ("body part", "approach", "device", "qualifier"),
    "2": ("body region", "approach", "device", "qualifier"),
    "3": ("body system or region", "approach", "substance", "qualifier"),
    "4": ("body system", "approach", "function or device", "qualifier"),
    "5": ("body system", "duration", "function", "qualifier"),
    "6": ("body system", "duration", "qualifier", "qualifier"),
    "7": ("body region", "approach", "method", "qualifier"),
    "8": ("body region", "approach", "method", "qualifier"),
    "9": ("body region", "approach", "method", "qualifier"),
    "B": ("body part", "contrast", "qualifier", "qualifier"),
    "C": ("body part", "radionuclide", "qualifier", "qualifier"),
    "D": ("treatment site", "modality qualifier", "isotope", "qualifier"),
    "F": ("body system or region", "type qualifier", "equipment", "qualifier"),
    "G": ("qualifier", "qualifier", "qualifier", "qualifier"),
    "H": ("qualifier", "qualifier", "qualifier", "qualifier"),
    "X": ("body part", "approach", "device, substance or technology", "new technology group"),
}
_NOTHING = re.compile(r"^(no|none)\b", re.I)  # "No Device", "No Qualifier", "None"


@dataclass(frozen=True)
class Abbreviation:
    short: str
    meaning: str


@dataclass(frozen=True)
class PlainLanguage:
    """A code in plain words; ``text`` is the whole of it as one paragraph."""

    summary: str  # what the code is, and whether it can be reported
    covers: list[str] = field(default_factory=list)  # what it covers and includes
    excludes: list[str] = field(default_factory=list)  # what it does not cover
    instructions: list[str] = field(default_factory=list)  # other codes to add or put first
    seventh_character: str | None = None  # what this code's 7th character means
    procedure: str | None = None  # an ICD-10-PCS code's axes as a sentence
    abbreviations: list[Abbreviation] = field(default_factory=list)
    source: str = ""  # what it was generated from

    @property
    def text(self) -> str:
        parts = [self.summary, self.procedure, *self.covers, *self.excludes,
                 *self.instructions, self.seventh_character]
        return " ".join(p for p in parts if p)


def describe(detail: CodeDetail) -> PlainLanguage:
    """The plain-language description of a code page, from its official data only."""
    # An abbreviation the official text spells out somewhere ("human immunodeficiency
    # virus [HIV]") is not explained again.
    said = " ".join([detail.title, *(t for g in detail.notes for t in g["notes"])]).casefold()
    found = {a: m for a, m in ABBREVIATIONS.items() if m.casefold() in said}
    spelled_out = set(found)

    def plain(text: str) -> str:
        return _expand(text, found)

    system = SYSTEM_NAMES.get(detail.system, detail.system)
    if detail.system == "ICD10PCS":
        summary, procedure = _pcs(detail, plain)
        covers: list[str] = []
        excludes: list[str] = []
        instructions: list[str] = []
    else:
        summary, procedure = _summary(detail, system, plain), None
        covers, excludes, instructions = _notes(detail, plain)
    latest = detail.history[-1]["release"] if detail.history else None
    release = f" (release {latest})" if latest else ""
    return PlainLanguage(
        summary=summary,
        covers=covers,
        excludes=excludes,
        instructions=instructions,
        seventh_character=_seventh(detail, plain),
        procedure=procedure,
        abbreviations=[Abbreviation(a, m) for a, m in found.items() if a not in spelled_out],
        source=f"Generated from the official {system} text{release} for this code; "
               "it restates that text and adds nothing of its own.",
    )


def _expand(text: str, found: dict[str, str]) -> str:
    """NOS and NEC written out; other abbreviations explained at their first use."""

    def one(match: re.Match[str]) -> str:
        short = match.group(1)
        meaning = ABBREVIATIONS[short]
        if short in ("NOS", "NEC", "w/", "w/o"):
            found.setdefault(short, meaning)
            return meaning
        if meaning.casefold() in text.casefold() or short in found:
            return short
        found[short] = meaning
        start, end = match.span()
        if text[start - 1:start] == "(" and text[end:end + 1] == ")":
            return f"{short}: {meaning}"  # "(rtPA)" becomes "(rtPA: recombinant ...)"
        return f"{short} ({meaning})"

    text = _TRAILING_NOS.sub(r", \1", text)  # "infarction (acute) NOS": a comma first
    return _ABBREVIATION.sub(one, text)


def _sentence(text: str) -> str:
    text = text.strip().rstrip(".;:,")
    return text[:1].upper() + text[1:] + "." if text else ""


def _lower_first(title: str) -> str:
    """A title inside a sentence: "Acute myocardial ..." -> "acute myocardial ...", but an
    abbreviation or a proper first word ("HIV", "Parkinson's") keeps its capital."""
    first = title.split(" ", 1)[0]
    if len(first) > 1 and (first[1].isupper() or "'" in first):
        return title
    return title[:1].lower() + title[1:]


def _summary(detail: CodeDetail, system: str, plain: Any) -> str:
    kind = {"ICD10CM": "diagnosis code", "HCPCS": "code", "CPT": "procedure code"}.get(
        detail.system, "code")
    title = plain(_lower_first(detail.title))
    if detail.kind not in ("code",) or not detail.billable:
        what = detail.kind.replace("_", " ") if detail.kind != "code" else "heading"
        head = f"{detail.code} is an {system} {what}: {title}."
        if detail.kind in ("chapter", "block", "section"):
            head += " It groups the codes below it and is not itself reported on a claim."
        else:
            head += (" It is not reported on a claim by itself: a more specific code below "
                     "it is used.")
    else:
        article = "an" if system[0] in "AEIOUH" else "a"
        head = f"{detail.code} is {article} {system} {kind} for {title}."
        head += " It is billable: it can be reported on a claim."
    if ", unspecified" in detail.title or detail.title.lower().startswith("unspecified"):
        head += (" \u201cUnspecified\u201d means the record does not say more, so a more "
                 "specific code is used when the documentation allows.")
    if re.search(r"\bother\b", detail.title, re.I) and detail.system == "ICD10CM":
        head += (" \u201cOther\u201d means the record does say more, but no code exists "
                 "for that detail.")
    if detail.system == "ICD10CM":
        places = [a for a in detail.ancestors if a.kind in ("chapter", "block")]
        if places:
            where = " and ".join(
                (f"chapter {a.code}, {a.title}" if a.kind == "chapter" else a.title)
                for a in places)
            head += f" It belongs to {where}."
        if "in diseases classified elsewhere" in detail.title:
            head += (" It describes a manifestation of another disease, so it is never "
                     "listed first: the underlying disease is coded first.")
    if detail.system == "CPT" and detail.code[-1:] in ("F", "T"):
        category = "II (performance measurement)" if detail.code.endswith("F") else \
            "III (emerging technology)"
        head += f" It is a Category {category} code."
    if detail.system == "HCPCS":
        terminates = detail.details.get("terminates")
        if terminates:
            head += f" It is valid until {terminates}."
    return head


def _notes(detail: CodeDetail, plain: Any) -> tuple[list[str], list[str], list[str]]:
    covers: list[str] = []
    excludes: list[str] = []
    instructions: list[str] = []
    broad = {a.code for a in detail.ancestors if a.kind in _BROAD}
    kinds = {a.code: a.kind if a.kind != "code" else "" for a in detail.ancestors}
    for group in detail.notes:
        kind, texts = group["kind"], [t for t in group["notes"] if t.strip()]
        if not texts or group["source"] in broad:
            continue
        own = group["source"] == detail.code
        level = kinds.get(group["source"], "")
        where = "" if own else f" (from {level} {group['source']})".replace("  ", " ")
        if kind == "inclusion_terms":
            covers.append(_sentence(f"It also covers: {_join(texts, plain)}"))
        elif kind == "includes":
            covers.append(_sentence(f"It includes{where}: {_join(texts, plain)}"))
        elif kind in NOTE_MEANINGS:
            items = _items(texts)
            if not items:
                continue
            lead, then = NOTE_MEANINGS[kind]
            line = _sentence(f"{lead}{where}: {_join(items, plain)}") + " " + then
            (excludes if kind.startswith("excludes") else instructions).append(line)
    return covers, excludes, instructions


def _items(texts: list[str]) -> list[str]:
    """The notes' items without a lead-in line ("code, if applicable, to identify:")."""
    return [t for t in texts if not t.rstrip().endswith(":")]


def _join(texts: list[str], plain: Any) -> str:
    return "; ".join(plain(_lower_first(t.strip())) for t in texts)


def _seventh(detail: CodeDetail, plain: Any) -> str | None:
    """What a 7th character means here (ICD-10-CM Official Guidelines, section I.A.5)."""
    if detail.system != "ICD10CM" or not detail.seven_character:
        return None
    characters = {c: m for c, m in detail.seven_character}
    compact = detail.code.replace(".", "")
    placeholder = ""
    if len(compact) == 7 and "X" in compact[3:6]:
        placeholder = (" The X is a placeholder: it fills the empty positions so that the "
                       "7th character stays in the 7th place.")
    if len(compact) == 7 and compact[-1] in characters:
        return _sentence(
            f"The 7th character {compact[-1]} means {plain(characters[compact[-1]])}"
        ) + placeholder
    listed = "; ".join(f"{c} for {plain(m)}" for c, m in characters.items())
    return _sentence(
        f"Codes here take a 7th character, from category {detail.seven_character_source}: "
        f"{listed}"
    )


def _pcs(detail: CodeDetail, plain: Any) -> tuple[str, str | None]:
    """A PCS code's seven characters as one sentence: what is done, to which body part,
    by which approach, with which device (ICD-10-PCS Official Guidelines, A and B)."""
    axes = {int(a["position"]): a for a in detail.details.get("axes", [])}
    title = plain(detail.title)
    if detail.kind != "code" or len(axes) < 7:
        what = detail.kind.replace("_", " ")
        return (f"{detail.code} is an ICD-10-PCS {what}: {title}. It is not a code to report: "
                "a procedure is reported with a complete 7-character code from its tables."
                ), _partial_axes(axes)
    summary = (f"{detail.code} is an ICD-10-PCS procedure code: {_words(title)}. "
               "It is billable: it can be reported on an inpatient claim.")
    operation = axes[3]
    done = _words(operation["meaning"])
    if operation.get("definition"):
        done += f" ({_lower_first(operation['definition'])})"
    names = PCS_AXES.get(detail.code[0], PCS_AXES["0"])
    said: list[str] = []
    for position, name in zip(range(4, 8), names, strict=True):
        axis = axes[position]
        meaning = _words(axis["meaning"])
        if _NOTHING.match(meaning):
            if name == "device":
                said.append("with no device left in place")
            continue
        if position == 4 and name.startswith("body"):
            phrase = f"on the {meaning} ({_words(axes[2]['meaning'])})"
        elif name == "approach":
            phrase = f"by the {meaning} approach"
            if axis.get("definition"):
                phrase += f" ({_lower_first(axis['definition'])})"
        elif name == "device":
            phrase = f"with the device: {meaning}"
        else:
            phrase = f"{name}: {meaning}"
        said.append(phrase)
    sentence = f"In the {axes[1]['meaning']} section, the procedure is {done}"
    return summary, plain(_sentence(", ".join([sentence, *said])))


def _words(meaning: str) -> str:
    """An axis meaning inside a sentence: PCS writes them in title case ("Percutaneous
    Endoscopic"); abbreviations ("CT") keep their capitals."""
    return " ".join(w if w.isupper() and len(w) > 1 else w.lower() for w in meaning.split())


def _partial_axes(axes: dict[int, dict[str, Any]]) -> str | None:
    if not axes:
        return None
    said = [f"position {p} ({a['axis']}) is {a['value']}, {a['meaning']}"
            for p, a in sorted(axes.items())]
    return _sentence("Its codes share these characters: " + "; ".join(said))
