"""Each of CasePilot's tools alone, against the real shipped releases."""

from __future__ import annotations

from datetime import date

from services.assistant import tools
from services.lookup.client import LocalLookup


async def test_search_codes_reads_lay_words(lookup: LocalLookup) -> None:
    found = await tools.search_codes(lookup, "type 2 diabetes with high blood sugar", ["ICD10CM"],
                                     billable_only=True)
    assert found[0].code == "E11.65"
    assert all(r.billable for r in found)


async def test_word_entries_tell_clinical_words_from_incidental_ones(lookup: LocalLookup) -> None:
    tummy, pain, football, world = await tools.word_entries(
        lookup, ["tummy", "Pain", "football", "world"])
    assert tummy >= 100 and pain >= 100  # a lexicon lay word, a title word
    assert 0 < football < 100  # a few external-cause and activity codes
    assert world == 0  # no entry holds it, though "word" is one letter away
    assert await tools.word_entries(lookup, []) == []


async def test_read_code_gives_notes_or_none(lookup: LocalLookup) -> None:
    detail = await tools.read_code(lookup, "ICD10CM", "e119")
    assert detail is not None and detail.code == "E11.9"
    kinds = {g["kind"] for g in detail.notes}
    assert {"excludes1", "use_additional_code"} <= kinds
    assert await tools.read_code(lookup, "ICD10CM", "Z99.99") is None
    pcs = await tools.read_code(lookup, "ICD10PCS", "0DTJ4ZZ")
    assert pcs is not None and [a["value"] for a in pcs.details["axes"]] == list("0DTJ4ZZ")


async def test_hierarchy(lookup: LocalLookup) -> None:
    tree = await tools.hierarchy(lookup, "ICD10CM", "S72.001")
    assert tree is not None
    assert [a.code for a in tree.ancestors][-3:] == ["S72", "S72.0", "S72.00"]
    assert "S72.001A" in [c.code for c in tree.children]
    assert await tools.hierarchy(lookup, "ICD10CM", "Q99.999") is None


async def test_check_pair_reads_excludes_both_ways(lookup: LocalLookup) -> None:
    check = await tools.check_pair(lookup, "E11.9", "E10.9")
    assert check is not None and check.verdict == "excludes1"
    assert {n.written_on for n in check.notes} == {"E10", "E11"}
    check = await tools.check_pair(lookup, "I10", "I60.9")
    assert check is not None and check.verdict == "excludes2"
    check = await tools.check_pair(lookup, "E11.65", "Z79.4")
    assert check is not None and check.verdict == "none" and not check.notes
    assert await tools.check_pair(lookup, "E11.65", "Z99.99") is None


async def test_code_variant_picks_seventh_character_and_side(lookup: LocalLookup) -> None:
    variant = await tools.code_variant(lookup, "S72.001", "initial encounter")
    assert variant is not None and variant.chosen is not None
    assert variant.chosen.code == "S72.001A"  # not said to be open: closed
    assert variant.character_source == "S72"
    variant = await tools.code_variant(lookup, "S72.001", "subsequent, delayed healing")
    assert variant is not None and variant.chosen is not None
    assert variant.chosen.code == "S72.001G"
    variant = await tools.code_variant(lookup, "S72.001A", "sequela")
    assert variant is not None and variant.chosen is not None
    assert variant.chosen.code == "S72.001S"
    variant = await tools.code_variant(lookup, "H66.91", "the left side")
    assert variant is not None and variant.chosen is not None
    assert variant.chosen.code == "H66.92"
    variant = await tools.code_variant(lookup, "S72.001", "no words that pick one")
    assert variant is not None and variant.chosen is None and len(variant.options) == 16


async def test_build_pcs_checks_the_table(lookup: LocalLookup) -> None:
    built = await tools.build_pcs(lookup, dict(enumerate("0DTJ4ZZ", start=1)))
    assert built.valid and built.code == "0DTJ4ZZ"
    assert built.row is not None and built.row.axes[4].meaning == "Percutaneous Endoscopic"
    partial = await tools.build_pcs(lookup, {1: "0", 2: "D", 3: "T", 4: "J"})
    assert not partial.valid and partial.code is None
    assert {a.value for a in partial.open_axes[5]} >= {"0", "4"}
    wrong = await tools.build_pcs(lookup, dict(enumerate("0DTJ3ZZ", start=1)))
    assert not wrong.valid and not wrong.candidates  # no percutaneous appendectomy row


async def test_root_operation_definition(lookup: LocalLookup) -> None:
    op = await tools.root_operation(lookup, "Resection")
    assert op is not None and op.value == "T" and op.name == "Resection"
    assert "all of a body part" in op.definition
    assert await tools.root_operation(lookup, "Teleportation") is None


async def test_guidelines_by_topic(lookup: LocalLookup) -> None:
    found = await tools.guidelines(lookup, "approach endoscopic")
    assert found and all(g.system == "ICD10PCS" for g in found)
    assert any("endoscopic" in g.text.lower() for g in found)


async def test_validity_on_a_date_of_service(lookup: LocalLookup) -> None:
    valid = await tools.validity(lookup, "ICD10CM", "E11.65", date(2026, 6, 15))
    assert valid.entry is not None and valid.release == "2026-04-01"
    before = await tools.validity(lookup, "ICD10CM", "E11.65", date(2020, 1, 1))
    assert before.entry is None and before.release is None
    assert before.history[0]["release"] == "2026-04-01"
    # One release loaded: it is the baseline, so no release changed anything yet.
    changes = await tools.release_changes(lookup, "ICD10CM")
    assert changes.total == 0 and changes.items == []


async def test_icd9_to_icd10_through_the_gems(lookup: LocalLookup) -> None:
    found = await tools.icd9_to_icd10(lookup, "250.00", procedure=False)
    assert [t[1] for t in found[0].targets] == ["E11.9"]
    assert found[0].targets[0][0] is not None
    assert found[0].mapping.description.startswith("Diabetes mellitus")
    found = await tools.icd9_to_icd10(lookup, "4701", procedure=True)
    assert found[0].mapping.system == "ICD10PCS"
    assert found[0].mapping.description == "Laparoscopic appendectomy"  # CMS's, whole
    assert [t[1] for t in found[0].targets] == ["0DTJ4ZZ"]
    assert await tools.icd9_to_icd10(lookup, "999.99") == []


async def test_explain_is_the_code_page_plain_language(lookup: LocalLookup) -> None:
    explained = await tools.explain(lookup, "ICD10CM", "E11.65")
    detail = await lookup.code_detail("ICD10CM", "E11.65")
    assert explained is not None and detail is not None
    assert explained.text == detail.plain_language.text
    assert await tools.explain(lookup, "ICD10CM", "Z99.99") is None
