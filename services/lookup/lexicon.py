"""What patients and clinicians type for the concepts in code titles.

The lexicon (``data/lexicon.json``) maps clinical phrases, worded as the code sets word
them, to the lay words, abbreviations and procedure names people search with:
"acute myocardial infarction" -> "heart attack", "AMI". The search projection adds to
each entry the synonyms of every concept its title (or an inclusion term) contains, so a
search for "heart attack" finds I21.9 in either backend, with no query-time knowledge.

ICD-10-PCS titles are composed from their axes, so procedure names are also built from
the axes: an operation's suffix on a body part's combining form ("Resection" of the
"Appendix" -> "appendectomy"), and the approach's everyday names ("Percutaneous
Endoscopic" on the abdomen -> "laparoscopic").

Concepts match on words (singular or plural) in any order ("pain in chest" holds "chest
pain"), so the lexicon stays short: one entry per concept, however many titles word it.
Not on Porter stems, which make "prostatitis" of every "prostate". A lay name given to a
specific concept ("thin bones": age-related osteoporosis) is not also given to a more
general one that lists it, so it leads to the entry it means. Words a title rules out
("without current pathological fracture") or leaves open ("not specified as acute or
chronic") do not count as stated.

``defaults`` name, by exact title, the entry a bare name means ("flu": J11.1), written
as "flu NOS" the way the tabular marks its own defaults. The shared ranker prefers such
entries, and the engine asks backends for them by that mark, so every caller of the
shared engine, in either mode, gets the lexicon without knowing of it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from services.lookup.search.wording import STOPWORDS, detail_stems
from services.shared.search.text import fold, stem, stems, words

DATA = Path(__file__).parent / "data" / "lexicon.json"
# Concept groups whose names are procedures (their names start so: "procedures_more").
PROCEDURE_GROUPS = "procedures"
_LATERALITY = re.compile(r"\b(left|right|bilateral)\b", re.I)
_GENERIC_PART = re.compile(r"\b(gland|lobe)s?\b", re.I)  # "Thyroid Gland Lobe" is the thyroid
# What a title leaves open is not what it says: "not specified as acute or chronic".
_OPEN_QUESTION = re.compile(r"\b(?:unspecified|not specified) as\b[^,;]*", re.I)
# Nor what it rules out: "osteoporosis without current pathological fracture".
_WITHOUT = re.compile(r"\bwithout\b[^,;]*", re.I)
# Nor is the encounter a seventh character adds ("Infection following immunization,
# initial encounter" is no encounter for immunization).
_SEVENTH = re.compile(r"\b(?:initial|subsequent) encounter\b", re.I)
# A word after "non" is one with it (_key).
_NON = re.compile(r"\bnon[\s-]+(?=[a-z])", re.I)


@lru_cache(maxsize=65536)
def _singular(word: str) -> str:
    """A plural made singular ("veins", "ovaries", "abscesses"), nothing more."""
    for suffix, keep in (("ies", "y"), ("sses", "ss"), ("es", "e"), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            return word[: -len(suffix)] + keep
    return word


def _key(phrase: str) -> frozenset[str]:
    """The words a text must hold for the phrase to apply (stopwords aside). A word
    after "non" is one with it: a "Non-pressure chronic ulcer" states no pressure
    ulcer ("bed sore"), "non-insulin antidiabetic drugs" no insulin."""
    joined = _NON.sub("non", phrase)
    return frozenset(_singular(w) for w in words(joined) if w not in STOPWORDS)


@lru_cache(maxsize=262144)
def _stated(text: str, *, negations: bool = False) -> frozenset[str]:
    """The words a text states, in the form concepts are matched on; what it says is
    absent ("without ...") only for a concept about absence, ``negations``."""
    text = _SEVENTH.sub(" ", _OPEN_QUESTION.sub(" ", text))
    return _key(text if negations else _WITHOUT.sub(" ", text))


def _name(phrase: str) -> tuple[str, ...]:
    """A term as a name, stopwords kept: "on blood thinners" is not "blood thinners"."""
    return tuple(_singular(w) for w in words(phrase))


def _searched_as(phrase: str) -> tuple[str, ...]:
    """A term as the backends search it (Porter stems), stopwords kept: "overdosed" and
    "overdose" are one term, "on blood thinners" and "blood thinners" two, and "flu"
    adds nothing to "flu NOS"."""
    return tuple(stem(w) for w in words(phrase) if w != "nos")


@dataclass(frozen=True)
class _Concept:
    needed: frozenset[str]  # the words a text must state for the synonyms to apply
    synonyms: tuple[str, ...]
    procedures: bool = False  # a procedure's names: for ICD-10-PCS entries only


@dataclass(frozen=True)
class _Morphology:
    """Procedure names from PCS axes: operation suffixes on body-part combining forms."""

    # root operation -> suffixes ("ectomy", "partial ectomy"), for any approach ("*") or
    # for some: "oscopy" names an inspection only through a scope
    suffixes: Mapping[str, Mapping[str, tuple[str, ...]]]
    # root operation -> axis values its suffixes need: a bypass "to Cutaneous" is an
    # "-ostomy"; one joining two body parts is not
    requires: Mapping[str, Mapping[str, str]]
    roots: tuple[tuple[frozenset[str], tuple[str, ...]], ...]  # body-part words -> roots
    approaches: Mapping[str, tuple[tuple[str, tuple[str, ...]], ...]]  # -> (systems, names)

    def terms(self, axes: Sequence[Mapping[str, Any]]) -> list[str]:
        meaning = {a.get("axis"): str(a.get("meaning", "")) for a in axes}
        system = str(axes[1].get("value", "")) if len(axes) > 1 else ""
        approach = meaning.get("Approach", "")
        part = _key(_LATERALITY.sub(" ", meaning.get("Body Part", "")))
        roots = [r for needed, rs in self.roots if needed <= part for r in rs]
        found: list[str] = []
        operation = meaning.get("Root Operation", "")
        by_approach = self.suffixes.get(operation, {})
        needed = self.requires.get(operation, {})
        if any(meaning.get(axis) != value for axis, value in needed.items()):
            by_approach = {}
        for pattern in (*by_approach.get("*", ()), *by_approach.get(approach, ())):
            # "ectomy NOS": a plain "-ectomy" means this operation (a resection) rather
            # than others the index also lists under the name (an excision).
            pattern, nos, _ = pattern.partition(" NOS")
            head, _, suffix = pattern.rpartition(" ")
            found.extend(f"{head} {root}{suffix}{nos}".strip() for root in roots)
        for systems, names in self.approaches.get(approach, ()):
            if systems == "*" or system in systems:
                found.extend(names)
        # What people call the commonest operations on any body part, "prostate removal"
        # and "thyroid biopsy", in the body part's own words.
        # Said without "gland" or "lobe" too: "thyroid biopsy", "adrenal removal".
        named = " ".join(
            _LATERALITY.sub(" ", meaning.get("Body Part", "")).replace(",", " ").split()
        )
        plain = " ".join(_GENERIC_PART.sub(" ", named).split())
        parts = dict.fromkeys(n for n in (named, plain) if n)
        if operation == "Resection":
            found.extend(f"{part} removal" for part in parts)
        if operation == "Excision" and meaning.get("Qualifier") == "Diagnostic":
            found.extend(f"{part} biopsy" for part in parts)
        return found


class Lexicon:
    """Synonyms of the concepts a code's texts contain; built once from the data file.

    ``defaults`` name one entry each, by its exact title: what a bare "flu" or
    "diabetes" means. They are indexed as "flu NOS", the tabular's own way of saying so
    ("Stroke NOS" is an inclusion term of I63.9), which the ranker understands.
    ``families`` do the same for every entry whose title begins with a phrase: the
    family a condition's other codes default to when its kind is not said (the coding
    guidelines' "type 2 diabetes when the type is not documented": "kidney disease due
    to diabetes" is E11.22, not E10.22).
    """

    def __init__(
        self,
        concepts: Mapping[str, Sequence[str]],
        morphology: _Morphology | None = None,
        defaults: Mapping[str, Sequence[str]] | None = None,
        operations: Iterable[str] = (),
        procedure_words: Iterable[str] = (),
        families: Mapping[str, Sequence[str]] | None = None,
        procedures: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self._by_word: dict[str, list[_Concept]] = {}
        self.size = 0
        named = [(phrase, synonyms, False) for phrase, synonyms in concepts.items()] + [
            (phrase, synonyms, True) for phrase, synonyms in (procedures or {}).items()
        ]
        keys = {phrase: _key(phrase) for phrase, _, _ in named}
        givers: dict[tuple[str, ...], list[frozenset[str]]] = {}
        for phrase, synonyms, _ in named:
            for synonym in synonyms:
                givers.setdefault(_name(synonym), []).append(keys[phrase])
        for phrase, synonyms, procedure in named:
            key = keys[phrase]
            # A synonym of exactly the concept's words says nothing new; one of fewer of
            # them is a shorter name ("dry eyes" for "dry eye syndrome") and stays. One a
            # more specific concept also gives is that concept's name only.
            kept = tuple(
                s
                for s in synonyms
                if _key(s) != key and not any(key < other for other in givers[_name(s)])
            )
            if not key or not kept:
                continue
            # Filed under its longest word, the likeliest to be rare: few subset checks.
            anchor = max(sorted(key), key=len)
            self._by_word.setdefault(anchor, []).append(_Concept(key, kept, procedure))
            self.size += 1
        self._defaults = {
            _key(title): tuple(f"{name} NOS" for name in names)
            for title, names in (defaults or {}).items()
        }
        self._families = tuple(
            (fold(start), tuple(f"{name} NOS" for name in names))
            for start, names in (families or {}).items()
        )
        self.morphology = morphology
        # PCS root operations: a concept naming one applies to that operation's codes
        # only, not to a code whose device happens to share the word ("Drainage Device").
        self._operations = frozenset(_singular(w) for op in operations for w in words(op))
        # Stems of words that only name procedures here (search.intent reads them).
        self.procedure_words = frozenset(procedure_words)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Lexicon:
        pcs = data.get("pcs") or {}
        morphology = _Morphology(
            suffixes={
                op: (
                    {a: tuple(s) for a, s in rule.items()}
                    if isinstance(rule, dict)
                    else {"*": tuple(rule)}
                )
                for op, rule in (pcs.get("operation_suffixes") or {}).items()
            },
            requires={op: dict(axes) for op, axes in (pcs.get("operation_requires") or {}).items()},
            roots=tuple(
                (_key(part), tuple(roots))
                for part, roots in (pcs.get("body_part_roots") or {}).items()
            ),
            approaches={
                approach: tuple((systems, tuple(names)) for systems, names in rules)
                for approach, rules in (pcs.get("approach_names") or {}).items()
            },
        )
        # The procedure groups name procedures: their concepts apply to ICD-10-PCS
        # entries only ("detachment" is an amputation there, not a retina's).
        concepts: dict[str, list[str]] = {}
        procedures: dict[str, list[str]] = {}
        for name, group in data.get("concepts", {}).items():
            held = procedures if name.startswith(PROCEDURE_GROUPS) else concepts
            for phrase, synonyms in group.items():
                held.setdefault(phrase, []).extend(synonyms)
        return cls(
            concepts, morphology, data.get("defaults") or {}, pcs.get("operations") or (),
            _procedure_words(data), data.get("default_families") or {}, procedures,
        )

    def names_needing(self, words_: Iterable[str]) -> list[str]:
        """The synonyms of every concept that needs one of the words: what else people
        call what those words name ("broken", "jammed finger" for a fracture or sprain)."""
        wanted = {_singular(w) for w in words_}
        return [
            synonym
            for concepts in self._by_word.values()
            for concept in concepts
            if not concept.needed.isdisjoint(wanted)
            for synonym in concept.synonyms
        ]

    def called(self, name: str) -> tuple[str, ...]:
        """What else people call what ``name`` names: the synonyms of the concept of just
        its words ("urticaria": "hives", "welts")."""
        key = _key(name)
        anchor = max(sorted(key), key=len) if key else ""
        return tuple(
            synonym
            for concept in self._by_word.get(anchor, ())
            if concept.needed == key and not concept.procedures
            for synonym in concept.synonyms
        )

    def synonyms(
        self, texts: Iterable[str], operation: str | None = None, *, procedure: bool = True
    ) -> list[str]:
        """Synonyms of every concept whose words all appear in one of the texts; of one
        a text rules out ("without loss of consciousness"), as ruled out ("without loc").

        With a PCS ``operation``, concepts naming another operation do not apply; for a
        text that is no ``procedure``, the procedure groups' concepts do not.
        """
        done = {_singular(w) for w in words(operation)} if operation else set()
        found: list[str] = []
        for text in texts:
            held = _stated(text)
            absent = _stated(text, negations=True) - held
            for word in sorted(held | absent):  # in order: terms must not vary by process
                for concept in self._by_word.get(word, ()):
                    if concept.procedures and not procedure:
                        continue
                    stated = held | absent if "without" in concept.needed else held
                    # Stated only with what the text rules out.
                    ruled_out = concept.needed <= held | absent and not concept.needed <= held
                    if not concept.needed <= stated and not ruled_out:
                        continue
                    if operation and (named := concept.needed & self._operations):
                        if not named & done:
                            continue
                    if ruled_out and "without" not in concept.needed:
                        # Named as absent as the title names it: "without loc" is
                        # "Concussion without loss of consciousness", and the ranker
                        # reads it as absent (wording.negated_of), not as "loc".
                        found.extend(f"without {synonym}" for synonym in concept.synonyms)
                    else:
                        found.extend(concept.synonyms)
        return found

    def terms(
        self,
        system: str,
        title: str,
        inclusion_terms: Sequence[str] = (),
        details: Mapping[str, Any] | None = None,
    ) -> tuple[str, ...]:
        """An entry's searchable extra text: its own synonyms, then the lexicon's.

        Inclusion terms, PCS index entries and the names the entry is the default for
        come first; concept synonyms follow, minus any that say what the title or an
        earlier term says. Deduplicated, case-insensitively.
        """
        axes = (details or {}).get("axes") or []
        operation = (
            str(axes[2].get("meaning", "")) if system == "ICD10PCS" and len(axes) > 2 else None
        )
        own = [
            *inclusion_terms,
            *_index_terms(details or {}),
            *self._defaults.get(_key(title), ()),
            *(name for start, names in self._families if fold(title).startswith(start)
              for name in names),
        ]
        extra = self.synonyms(
            [title, *inclusion_terms], operation, procedure=system == "ICD10PCS"
        )
        if system == "ICD10PCS" and self.morphology is not None and len(axes) >= 5:
            extra += self.morphology.terms(axes)
        title_stems = stems(title)
        title_details = detail_stems(title)
        seen = {fold(title)}
        kept: list[str] = []
        for term in own:
            if (folded := fold(term)) not in seen:
                seen.add(folded)
                kept.append(term)
        said = {_searched_as(term): i for i, term in enumerate(kept)}
        for term in extra:
            # A synonym that searches like the title or a kept term adds nothing (but a
            # "NOS" says more than the same words without); one made of some title words
            # names the entry ("tracheostomy") and stays.
            name = _searched_as(term)
            searched = frozenset(stem(w) for w in words(term) if w not in STOPWORDS)
            if not searched or (searched <= title_stems and title_details <= searched):
                continue
            if name in said:
                if term.endswith(" NOS") and not kept[said[name]].endswith(" NOS"):
                    kept[said[name]] = term
                continue
            said[name] = len(kept)
            kept.append(term)
        return tuple(kept)


def _index_terms(details: Mapping[str, Any]) -> list[str]:
    """The PCS index's names for a code: the "see" cross-references and exact entries.

    "Appendectomy see Resection, Appendix 0DTJ" names the operation; an entry pointing at
    the whole code ("Colonoscopy 0DJD8ZZ") makes it the code for that name, marked "NOS"
    as the tabular marks its defaults. Lines that only walk down the operation's own tree
    ("Resection / Appendix 0DTJ") or list devices under a body part repeat the title or
    belong to sibling codes, and are left out.
    """
    found: list[str] = []
    for item in details.get("index_entries") or ():
        term, text = str(item.get("term", "")), str(item.get("text", ""))
        before, see, _ = text.partition("see ")
        reference = text.split()[-1] if text.split() else ""
        if see:
            heading = before.strip(" ,")
            found.append(f"{term}, {heading}" if heading else term)
        elif len(reference) == 7 and reference.isalnum():
            found.append(f"{term} NOS")
    return found


def _procedure_words(data: Mapping[str, Any]) -> frozenset[str]:
    """Stems of the words the procedure groups' names use and no other group's phrases,
    names or defaults: "chole", "egd", "cabg", "stent" name procedures; "breast" in
    "breast reduction" does not."""
    named: set[str] = set()
    elsewhere: set[str] = set()
    for group, concepts in (data.get("concepts") or {}).items():
        procedures = group.startswith(PROCEDURE_GROUPS)
        for phrase, synonyms in concepts.items():
            (named if procedures else elsewhere).update(stem(w) for s in synonyms for w in words(s))
            if not procedures:
                elsewhere.update(stem(w) for w in words(phrase))
    for names in (data.get("defaults") or {}).values():
        elsewhere.update(stem(w) for name in names for w in words(name))
    return frozenset(named - elsewhere - {stem(w) for w in STOPWORDS})


@lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    """The lexicon shipped with the service."""
    with DATA.open(encoding="utf-8") as f:
        return Lexicon.from_data(json.load(f))
