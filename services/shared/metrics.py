"""The Prometheus series every medcode process may expose at ``/metrics``.

Declared once here (prometheus-client's own pattern: metric objects are process-wide and
cheap; nothing is sent anywhere, Prometheus scrapes). Products observe into the series
that fit them; names and labels are an interface to dashboards, so change them additively.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

# Request latency of the public API, per GraphQL operation name ("anonymous" when unnamed).
GRAPHQL_SECONDS = Histogram(
    "medcode_graphql_request_seconds",
    "Time to execute one GraphQL operation, by operation name and type.",
    ["operation", "type"],
)
SEARCH_SECONDS = Histogram(
    "medcode_search_seconds",
    "Time to answer one code search (candidates, ranking and facets).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
METERING_OUTCOMES = Counter(
    "medcode_metering_outcomes_total",
    "Decisions on metered code pages: 'spent' (a view used), 'open' (already unlocked or "
    "unlimited), 'locked' (no view left or no session).",
    ["outcome"],
)
# Lags are in log positions (notification ids): how far the newest public event in the
# source's store is ahead of what was published / applied.
RELAY_LAG = Gauge(
    "medcode_relay_lag",
    "Log positions between a source's newest public event and what its relay published.",
    ["source"],
)
CONSUMER_LAG = Gauge(
    "medcode_consumer_lag",
    "Log positions between a source's newest public event and what a consumer applied.",
    ["consumer"],
)
_FAILURES = {
    "relay": Counter("medcode_relay_failures_total",
                     "Errors that made a relay restart or stop.", ["relay"]),
    "consumer": Counter("medcode_consumer_failures_total",
                        "Errors that made a consumer restart or stop.", ["consumer"]),
}
DEAD_LETTERS = Counter(
    "medcode_consumer_dead_letters_total",
    "Events a consumer set aside after repeated failures (its projection allows skipping).",
    ["consumer"],
)
OUTBOX_DEPTH = Gauge(
    "medcode_outbox_depth",
    "Items written but not yet delivered, per outbox ('events': the event store as the "
    "relay's outbox; products add theirs, such as mail).",
    ["outbox"],
)


class _Failures:
    """``WORKER_FAILURES.labels(kind, name)``: the failures counter of that kind of worker."""

    def labels(self, kind: str, name: str) -> Counter:
        return _FAILURES[kind].labels(name)


WORKER_FAILURES = _Failures()


def exposition() -> tuple[bytes, str]:
    """The text format Prometheus scrapes, and its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST

