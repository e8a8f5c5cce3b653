"""The accounts product's Prometheus series (the process-wide registry the platform's
``/metrics`` exposes)."""

from __future__ import annotations

from prometheus_client import Counter

METERING_OUTCOMES = Counter(
    "medcode_metering_outcomes_total",
    "Decisions on metered code pages: 'spent' (a view used), 'open' (already unlocked or "
    "unlimited), 'locked' (no view left or no session).",
    ["outcome"],
)
