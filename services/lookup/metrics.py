"""The lookup product's Prometheus series (the process-wide registry the platform's
``/metrics`` exposes)."""

from __future__ import annotations

from prometheus_client import Histogram

SEARCH_SECONDS = Histogram(
    "medcode_search_seconds",
    "Time to answer one code search (candidates, ranking and facets).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
