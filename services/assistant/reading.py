"""Reading a coding question: the codes, dates and words in it, and what kind it is.

Pure functions, no I/O: the composer turns a ``Reading`` into tool calls. The kinds are
the questions coders ask most (see tests/assistant/questions.tsv); the cues are general
words of the trade (billable, excludes, encounter, -ectomy...), never test phrasings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

# Code-shaped words. ICD-10-CM: a letter, a digit, a digit or letter, then up to four
# more (dot optional when typed); PCS: seven characters without I and O, starting with
# a section digit or letter and holding at least two digits; HCPCS: a letter and four
# digits; CPT: four digits and a digit or F/T/U/M.
CM_TOKEN = re.compile(r"(?<![\w.])([A-Za-z][0-9][0-9A-Za-z](?:\.?[0-9A-Za-z]{1,4})?)(?![\w])")
PCS_TOKEN = re.compile(r"(?<![\w.])([0-9BCDFGHX][0-9A-HJ-NP-Za-hj-np-z]{6})(?![\w])")
HCPCS_TOKEN = re.compile(r"(?<![\w.])([A-Va-v][0-9]{4})(?![\w.])")
CPT_TOKEN = re.compile(r"(?<![\w.-])([0-9]{4}[0-9FTUMftum])(?![\w.-])")
ICD9_TOKEN = re.compile(r"(?<![\w.])([VvEe]?[0-9]{2,4}(?:\.[0-9]{1,2})?)(?![\w])")
ISO_DATE = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
US_DATE = re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b")
MONTHS = {m: i + 1 for i, m in enumerate(
    ("january", "february", "march", "april", "may", "june", "july", "august", "september",
     "october", "november", "december"))}
MONTHS.update({m[:3]: i for m, i in list(MONTHS.items())})
WORDY_DATE = re.compile(
    r"\b(" + "|".join(sorted(MONTHS, key=len, reverse=True))
    + r")\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})\b",
    re.IGNORECASE,
)
ICD9_CUE = re.compile(r"\bicd[\s-]?9(?:[\s-]?cm)?\b", re.IGNORECASE)
ICD_NAME = re.compile(r"\bicd[\s-]?(?:9|10)(?:[\s-]?(?:cm|pcs))?\b", re.IGNORECASE)

WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def has(text: str, *cues: str) -> bool:
    """Whether any cue occurs as a whole word or phrase (a trailing * matches a stem)."""
    lowered = text.lower()
    for cue in cues:
        pattern = re.escape(cue.rstrip("*")) + (r"\w*" if cue.endswith("*") else r"\b")
        if re.search(r"\b" + pattern, lowered):
            return True
    return False


PAIR_CUES = ("together", "with", "and", "both", "same claim", "compatible", "alongside",
             "along with", "combined", "combine", "at the same time", "plus")
EXCLUDES_CUES = ("exclude*", "excluded", "not coded here", "excludes1", "excludes2")
BILLABLE_CUES = ("billable", "bill", "billed", "billing", "claim", "header", "reportable",
                 "valid for billing", "specific enough", "payable")
HISTORY_CUES = ("history", "changed", "change", "changes", "valid on", "valid in",
                "effective", "new code", "deleted", "revised", "when was", "still valid",
                "date of service", "dos", "was it valid", "valid for a date", "added")
SEVENTH_CUES = ("7th", "seventh", "character", "encounter", "initial", "subsequent",
                "sequela", "sequelae", "follow-up", "followup", "nonunion", "malunion",
                "delayed healing", "routine healing", "late effect")
SIDE_CUES = ("left", "right", "bilateral", "both sides", "other side")
EXPLAIN_CUES = ("explain", "mean", "meaning", "means", "what is", "what's", "what does",
                "describe", "plain", "simple terms", "layman", "for a patient", "tell me about",
                "stand for", "stands for")
HIERARCHY_CUES = ("parent", "children", "child codes", "subcodes", "sub-codes",
                  "more specific", "hierarchy", "under it", "belongs to", "category of")
SEQUENCING_CUES = ("code first", "use additional", "code also", "sequenc*", "first-listed",
                   "primary")
GUIDELINE_CUES = ("guideline*", "official rule*", "convention*")
ROOT_OPERATION_CUES = ("root operation",)
PROCEDURE_CUES = ("pcs", "procedure", "surgery", "surgical", "operation", "removal",
                  "resection", "excision", "repair", "replacement", "insertion",
                  "inspection", "biopsy", "section", "transplant*", "amputation", "bypass",
                  "ligation", "dilation", "drainage", "extraction", "fusion", "implant*",
                  "reduction", "fixation", "release", "reattachment", "occlusion")
PROCEDURE_SUFFIXES = ("ectomy", "ectomies", "otomy", "ostomy", "scopy", "plasty", "pexy",
                      "rrhaphy", "lysis", "desis", "centesis", "tripsy", "clasis")
CODING_CUES = ("code", "codes", "coding", "icd", "icd-10", "icd10", "cm", "pcs", "cpt",
               "hcpcs", "diagnosis", "dx", "billable", "claim", "modifier", "guideline*",
               "excludes", "encounter", "gem*", "crosswalk", "procedure")
# Subjects no code set covers: answered with a polite OUT_OF_SCOPE, never searched.
OFF_TOPIC_CUES = ("weather", "forecast", "recipe", "poem", "joke", "song", "lyrics", "movie",
                  "stock price", "stocks", "bitcoin", "crypto", "football", "soccer",
                  "basketball", "baseball", "score", "capital of", "president", "election",
                  "translate", "write a story", "python script", "javascript", "programming",
                  "homework", "horoscope", "lottery", "celebrity", "restaurant", "hotel",
                  "flight", "vacation", "password", "hack", "essay", "novel")
FOLLOW_UP_START = re.compile(
    r"^\s*(and|also|plus|what if|what about|how about|if|but|then|same|ok|okay|now)\b",
    re.IGNORECASE,
)
# Question scaffolding around a condition or procedure: taken off before searching.
SCAFFOLD = re.compile(
    r"\b(what(?:'s| is| are)?|which|whats|the|a|an|icd[\s-]?10(?:[\s-]?(?:cm|pcs))?|icd|"
    r"cm|pcs|code|codes|coding|for|do|does|i|we|you|use|should|would|to|be|is|it|that|"
    r"this|please|tell|me|give|find|need|my|our|his|her|their|patient|pt|son|daughter|kid|"
    r"child|husband|wife|mother|father|mom|dad|says|said|she|he|they|has|have|had|got|"
    r"diagnosis|dx|diagnosed|with a|of a|about|number|correct|right code|proper|"
    r"how|can|could|looking|look|up|report|reported|bill)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Reading:
    text: str
    kind: str
    codes: list[str] = field(default_factory=list)  # code-shaped words, as typed
    pcs_codes: list[str] = field(default_factory=list)
    icd9: list[str] = field(default_factory=list)
    day: date | None = None
    follow_up: bool = False
    subject: str = ""  # the condition or procedure words, scaffolding removed
    off_topic: bool = False
    coding_words: bool = False  # the question speaks of coding at all


def read_question(text: str, has_history: bool = False, about: bool = False) -> Reading:
    """What a question asks; see the module docstring."""
    lowered = text.lower()
    day = find_date(text)
    date_spans = [m.span() for p in (ISO_DATE, US_DATE, WORDY_DATE) for m in p.finditer(text)]

    def outside_dates(match: re.Match[str]) -> bool:
        return not any(s <= match.start() < e for s, e in date_spans)

    icd9: list[str] = []
    if ICD9_CUE.search(text):
        rest = ICD_NAME.sub(lambda m: " " * len(m.group(0)), text)
        icd9 = [m.group(1) for m in ICD9_TOKEN.finditer(rest) if outside_dates(m)
                and not re.fullmatch(r"(19|20)\d\d", m.group(1))]
    pcs = [m.group(1).upper() for m in PCS_TOKEN.finditer(text)
           if outside_dates(m) and sum(ch.isdigit() for ch in m.group(1)) >= 2
           and any(ch.isalpha() for ch in m.group(1))]
    codes = [m.group(1) for m in CM_TOKEN.finditer(text) if outside_dates(m)
             and not ICD9_CUE.fullmatch(m.group(1)) and m.group(1).lower() not in {"icd10"}]
    codes = [c for c in codes if not any(c.upper() in p for p in pcs)]
    if icd9:
        codes = [c for c in codes if c not in icd9 and c.upper() not in
                 {i.upper() for i in icd9}]
    follow_up = has_history and bool(
        FOLLOW_UP_START.match(text) or (len(words(text)) <= 4 and not codes and not pcs))
    named = len(codes) + len(pcs)
    kind = _kind(text, named, bool(icd9), day, follow_up, about)
    off_topic = has(lowered, *OFF_TOPIC_CUES)
    return Reading(
        text=text, kind=kind, codes=codes, pcs_codes=pcs, icd9=icd9, day=day,
        follow_up=follow_up, subject=subject_words(text),
        off_topic=off_topic, coding_words=has(lowered, *CODING_CUES) or named > 0,
    )


def _kind(text: str, named: int, icd9: bool, day: date | None, follow_up: bool,
          about: bool) -> str:
    if icd9:
        return "icd9"
    if named or about:
        if named >= 2 and has(text, *PAIR_CUES):
            return "pair"
        if has(text, *EXCLUDES_CUES):
            return "excludes"
        if has(text, *SEQUENCING_CUES):
            return "sequencing"
        if has(text, *BILLABLE_CUES):
            return "billable"
        if day is not None or has(text, *HISTORY_CUES):
            return "date"
        if has(text, *SEVENTH_CUES):
            return "seventh"
        if has(text, *SIDE_CUES):
            return "side"
        if has(text, *HIERARCHY_CUES):
            return "hierarchy"
        if named or not follow_up:
            return "explain"
    if has(text, *ROOT_OPERATION_CUES):
        return "root_operation"
    if has(text, *GUIDELINE_CUES):
        return "guideline"
    if follow_up:
        return "follow_up"
    if is_procedure(text):
        return "pcs"
    return "condition"


def is_procedure(text: str) -> bool:
    return has(text, *PROCEDURE_CUES) or any(
        w.endswith(PROCEDURE_SUFFIXES) for w in words(text)
    )


def subject_words(text: str) -> str:
    """The condition or procedure named, without the question around it."""
    cleaned = re.sub(r"[?!.,;:]", " ", text)
    cleaned = SCAFFOLD.sub(" ", cleaned)
    return " ".join(cleaned.split())


def find_date(text: str) -> date | None:
    candidates: list[tuple[int, int, int]] = []
    for m in ISO_DATE.finditer(text):
        candidates.append((int(m.group(1)), int(m.group(2)), int(m.group(3))))
    for m in US_DATE.finditer(text):
        candidates.append((int(m.group(3)), int(m.group(1)), int(m.group(2))))
    for m in WORDY_DATE.finditer(text):
        candidates.append((int(m.group(3)), MONTHS[m.group(1).lower()], int(m.group(2))))
    for y, mo, d in candidates:
        try:
            return date(y, mo, d)
        except ValueError:
            continue
    return None
