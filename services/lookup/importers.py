"""Turning official release files into lookup commands."""

from __future__ import annotations

from pathlib import Path

from services.lookup.application import CodeSets, ImportSummary, Progress
from services.lookup.domain import CodeEntry, ReleaseAlreadyImported
from services.lookup.gems import publish_cm_gems
from services.lookup.icd10cm import Tabular, default_tabular_path, parse_tabular


def _block_code(code: str) -> str:
    # A block of one category has the category's own id in the XML ("B10"); as a range
    # ("B10-B10") it stays distinct from the category it holds.
    return code if "-" in code else f"{code}-{code}"


def icd10cm_entries(tabular: Tabular) -> list[CodeEntry]:
    entries = []
    for e in tabular.entries:
        code = _block_code(e.code) if e.kind == "block" else e.code
        parent = _block_code(e.parent) if e.kind == "category" and e.parent else e.parent
        entries.append(
            CodeEntry(
                system="ICD10CM",
                code=code,
                title=e.title,
                kind=e.kind,
                billable=e.billable,
                parent=parent,
                chapter=e.chapter,
                notes=dict(e.notes),
                seven_character=e.seven_character,
            )
        )
    return entries


def import_icd10cm(
    app: CodeSets, path: Path | None = None, progress: Progress | None = None
) -> ImportSummary:
    """Parse the whole file first: a broken file raises before anything is recorded.

    The ICD-9-CM to ICD-10-CM GEMs are then published (idempotently: unchanged, they
    record nothing), also when the release was already imported, so that re-running the
    import on an older store adds them.
    """
    source = path or default_tabular_path()
    report = progress or (lambda stage, done, total: None)
    tabular = parse_tabular(source, progress=lambda n: report("parse", n, 0))
    try:
        summary = app.import_release(
            "ICD10CM", tabular.release, source.name, icd10cm_entries(tabular), progress
        )
    except ReleaseAlreadyImported:
        publish_cm_gems(app)
        raise
    publish_cm_gems(app)
    return summary
