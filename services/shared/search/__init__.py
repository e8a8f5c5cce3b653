"""The search layer any product can use: documents, backends, versioned indexes behind
an alias, checkpoints, rebuilds and facets (text.py is compiled by ``make compiled``:
importing this package refuses a compiled module older than its source)."""

from __future__ import annotations

from pathlib import Path

from services.shared.compiled import refuse_stale_builds

refuse_stale_builds(Path(__file__).parent)
