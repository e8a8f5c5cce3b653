"""Fault points: places where the fault tests kill this process on purpose (kill -9).

Each point is a call ``faults.point("relay.after_publish")`` at a gap that matters for
correctness (after a publish before its tracking row, after a write before its
checkpoint, mid-batch). They do nothing unless ``MEDCODE_FAULTS`` is set, which only the
test suite does, and never in production (``MEDCODE_ENV=production`` ignores it):

    MEDCODE_FAULTS="relay.after_publish:3"   # SIGKILL at the 3rd time that point is hit

Several ``name:hit`` pairs may be given, comma-separated; the first reached kills.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

_hits: Counter[str] = Counter()
_plan: dict[str, int] | None = None

POINTS = (
    "relay.after_publish",  # the bus holds the page; the relay's tracking row does not
    "consumer.before_apply",  # a batch was received, nothing of it written
    "projection.mid_batch",  # part of a batch written (inside its transaction, if any)
    "projection.after_write",  # the batch written, its checkpoint not yet
    "search.compact.before_commit",  # a version written again whole, not committed
)


def _load() -> dict[str, int]:
    raw = os.environ.get("MEDCODE_FAULTS", "")
    if not raw or os.environ.get("MEDCODE_ENV") == "production":
        return {}
    plan: dict[str, int] = {}
    for item in raw.split(","):
        name, _, hit = item.strip().partition(":")
        if name not in POINTS:
            raise ValueError(f"MEDCODE_FAULTS names an unknown fault point {name!r}: {POINTS}")
        plan[name] = int(hit or 1)
    return plan


def point(name: str) -> None:
    """Kill this process here if the test plan says so; otherwise nothing."""
    global _plan
    if _plan is None:
        _plan = _load()
    if not _plan or name not in _plan:
        return
    _hits[name] += 1
    if _hits[name] >= _plan[name]:
        os.kill(os.getpid(), signal.SIGKILL)
