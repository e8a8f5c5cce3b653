"""The seed of this run's random kill points: MEDCODE_FAULT_SEED, or drawn and printed."""

from __future__ import annotations

import os
import secrets

SEED = int(os.environ.get("MEDCODE_FAULT_SEED") or secrets.randbelow(2**32))


def banner() -> str:
    return f"fault suite seed: {SEED} (MEDCODE_FAULT_SEED={SEED} repeats these kill points)"
