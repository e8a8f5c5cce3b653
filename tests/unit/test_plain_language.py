"""Plain-language descriptions restate a code's official data, nothing else."""

from __future__ import annotations

from typing import Any

from services.lookup.plain_language import describe
from services.lookup.values import CodeDetail, CodeSummary


def _cm(code: str, title: str, **kwargs: Any) -> CodeDetail:
    ancestors = [
        CodeSummary("ICD10CM", "19", "Injury, poisoning and certain other consequences of "
                    "external causes (S00-T88)", False, "chapter"),
        CodeSummary("ICD10CM", "S70-S79", "Injuries to the hip and thigh (S70-S79)", False,
                    "block"),
        CodeSummary("ICD10CM", "S72", "Fracture of femur", False, "category"),
    ]
    return CodeDetail(system="ICD10CM", code=code, title=title, billable=True, kind="code",
                      chapter="19", ancestors=ancestors,
                      history=[{"release": "2026-04-01", "change": "added"}], **kwargs)


SEVENTH = [["A", "initial encounter for closed fracture"], ["D", "subsequent encounter for "
           "closed fracture with routine healing"], ["S", "sequela"]]


def test_a_seventh_character_is_explained_with_its_placeholder() -> None:
    detail = _cm("S72.0XXA", "Fracture of femur NOS, initial encounter for closed fracture",
                 seven_character=SEVENTH, seven_character_source="S72")
    described = describe(detail)
    assert described.seventh_character == (
        "The 7th character A means initial encounter for closed fracture. The X is a "
        "placeholder: it fills the empty positions so that the 7th character stays in the "
        "7th place."
    )
    assert "fracture of femur, not otherwise specified, initial encounter" in described.summary
    assert "It is billable" in described.summary
    assert [(a.short, a.meaning) for a in described.abbreviations] == [
        ("NOS", "not otherwise specified")]
    assert described.source.startswith("Generated from the official ICD-10-CM text "
                                       "(release 2026-04-01)")


def test_a_header_lists_the_seventh_characters_its_codes_take() -> None:
    detail = CodeDetail(system="ICD10CM", code="S72.001", title="Fracture of right femur",
                        billable=False, kind="code", chapter="19", ancestors=[],
                        seven_character=SEVENTH, seven_character_source="S72")
    described = describe(detail)
    assert "not reported on a claim by itself" in described.summary
    assert described.seventh_character is not None
    assert described.seventh_character.startswith(
        "Codes here take a 7th character, from category S72: A for initial encounter")


def test_notes_become_covers_excludes_and_instructions() -> None:
    notes = [
        {"kind": "inclusion_terms", "source": "S72.9", "notes": ["Broken thigh bone NOS"],
         "links": []},
        {"kind": "excludes1", "source": "S72", "notes": ["traumatic amputation (S78.-)"],
         "links": []},
        {"kind": "excludes2", "source": "S72", "notes": ["fracture of foot (S92.-)"],
         "links": []},
        {"kind": "use_additional_code", "source": "S72",
         "notes": ["code, if applicable, to identify:", "retained foreign body (Z18.-)"],
         "links": []},
        # Written on the chapter: listed on the page, left out of the description.
        {"kind": "excludes2", "source": "19", "notes": ["birth trauma (P10-P15)"],
         "links": []},
    ]
    described = describe(_cm("S72.9", "Unspecified fracture of femur", notes=notes))
    assert described.covers == ["It also covers: broken thigh bone, not otherwise specified."]
    assert described.excludes == [
        "Never reported with this code (Excludes1) (from category S72): traumatic amputation "
        "(S78.-). A code from this list and this code are not reported together.",
        "Not included in this code (Excludes2) (from category S72): fracture of foot "
        "(S92.-). When the patient also has one of these, it is coded separately, and both "
        "codes may be reported.",
    ]
    assert described.instructions == [
        "Use an additional code (from category S72): retained foreign body (Z18.-). It is "
        "listed after this one."]
    assert "birth trauma" not in described.text
    assert "\u201cUnspecified\u201d means the record does not say more" in described.summary


def test_an_abbreviation_is_explained_once_unless_the_text_spells_it_out() -> None:
    notes = [{"kind": "code_first", "source": "B99.9", "notes": [
        "status post tPA (rtPA) in another facility (Z92.82)"], "links": []}]
    described = describe(_cm("B99.9", "Infection after tPA", notes=notes))
    assert "tPA (tissue plasminogen activator)" in described.text
    assert "(rtPA: recombinant tissue plasminogen activator)" in described.text
    assert described.text.count("(tissue plasminogen activator)") == 1
    spelled = describe(_cm("B20", "Human immunodeficiency virus [HIV] disease",
                           notes=[{"kind": "excludes1", "source": "B20",
                                   "notes": ["exposure to HIV virus (Z20.6)"], "links": []}]))
    assert "HIV (" not in spelled.text and spelled.abbreviations == []


def test_a_pcs_code_reads_as_a_sentence_of_its_axes() -> None:
    axes = [
        {"position": 1, "axis": "Section", "value": "0", "meaning": "Medical and Surgical"},
        {"position": 2, "axis": "Body System", "value": "D",
         "meaning": "Gastrointestinal System"},
        {"position": 3, "axis": "Root Operation", "value": "T", "meaning": "Resection",
         "definition": "Cutting out or off, without replacement, all of a body part"},
        {"position": 4, "axis": "Body Part", "value": "J", "meaning": "Appendix"},
        {"position": 5, "axis": "Approach", "value": "4", "meaning": "Percutaneous Endoscopic",
         "definition": "Entry, by puncture or minor incision, of instrumentation"},
        {"position": 6, "axis": "Device", "value": "Z", "meaning": "No Device"},
        {"position": 7, "axis": "Qualifier", "value": "Z", "meaning": "No Qualifier"},
    ]
    detail = CodeDetail(system="ICD10PCS", code="0DTJ4ZZ",
                        title="Resection of Appendix, Percutaneous Endoscopic Approach",
                        billable=True, kind="code", chapter="0", ancestors=[],
                        details={"axes": axes}, history=[{"release": "2025", "change": "added"}])
    described = describe(detail)
    assert described.procedure == (
        "In the Medical and Surgical section, the procedure is resection (cutting out or off, "
        "without replacement, all of a body part), on the appendix (gastrointestinal system), "
        "by the percutaneous endoscopic approach (entry, by puncture or minor incision, of "
        "instrumentation), with no device left in place."
    )
    assert described.summary.startswith(
        "0DTJ4ZZ is an ICD-10-PCS procedure code: resection of appendix, percutaneous "
        "endoscopic approach.")
    assert described.text.startswith(described.summary + " " + described.procedure)
