"""The Prometheus series every medcode process may expose at ``/metrics``.

Declared once here (prometheus-client's own pattern: metric objects are process-wide and
cheap; nothing is sent anywhere, Prometheus scrapes). Products observe into the series
that fit them; names and labels are an interface to dashboards, so change them additively.

Several serving processes (``medcode serve`` with ``MEDCODE_WORKERS`` > 1) answer on one
port, so a scrape may reach any of them: there prometheus-client runs in its multiprocess
mode (``PROMETHEUS_MULTIPROC_DIR``, set by ``gateway.workers.share_metrics`` before the
processes start): each process writes its values to files in that directory, and
``/metrics`` adds up every process's files, those of exited processes included, so the
counts are the whole server's whichever process answers. Gauges say how to combine
processes (``multiprocess_mode``): the lags and depths below are measured by the one
process that runs the relays and consumers, so the live processes' most recent value wins.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.metrics_core import Metric

# prometheus-client chose where values live when it was imported (just above), from this
# same variable: files shared by the serving processes, or this process's memory.
MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
# How a gauge that one process measures combines across processes (see above).
MEASURED_BY_ONE: Final = "livemostrecent"

# Request latency of the public API, per GraphQL operation name ("anonymous" when unnamed).
GRAPHQL_SECONDS = Histogram(
    "medcode_graphql_request_seconds",
    "Time to execute one GraphQL operation, by operation name and type.",
    ["operation", "type"],
)
# Products declare their own series beside their code (services/<product>/metrics.py).
# Lags are in log positions (notification ids): how far the newest public event in the
# source's store is ahead of what was published / applied.
RELAY_LAG = Gauge(
    "medcode_relay_lag",
    "Log positions between a source's newest public event and what its relay published.",
    ["source"],
    multiprocess_mode=MEASURED_BY_ONE,
)
CONSUMER_LAG = Gauge(
    "medcode_consumer_lag",
    "Log positions between a source's newest public event and what a consumer applied.",
    ["consumer"],
    multiprocess_mode=MEASURED_BY_ONE,
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
    multiprocess_mode=MEASURED_BY_ONE,
)


class _Failures:
    """``WORKER_FAILURES.labels(kind, name)``: the failures counter of that kind of worker."""

    def labels(self, kind: str, name: str) -> Counter:
        return _FAILURES[kind].labels(name)


WORKER_FAILURES = _Failures()


def watch_worker(kind: str, name: str) -> None:
    """List a relay's or consumer's failure (and dead-letter) counts from its start, at 0:
    a count nobody incremented yet is a figure too."""
    WORKER_FAILURES.labels(kind, name)
    if kind == "consumer":
        DEAD_LETTERS.labels(name)


def exposition() -> tuple[bytes, str]:
    """The text format Prometheus scrapes (this server's figures), and its content type."""
    if MULTIPROCESS_DIR is None:
        return generate_latest(), CONTENT_TYPE_LATEST
    forget_exited(Path(MULTIPROCESS_DIR))
    registry = CollectorRegistry()
    registry.register(_EveryProcess(MULTIPROCESS_DIR))
    return generate_latest(registry), CONTENT_TYPE_LATEST


def process_exiting() -> None:
    """This serving process stops: its "live" gauges stop counting (its counters stay)."""
    if MULTIPROCESS_DIR is not None:
        multiprocess.mark_process_dead(os.getpid(), MULTIPROCESS_DIR)


def forget_exited(directory: Path) -> None:
    """Mark dead the processes that left live-gauge files but are gone (a kill -9, or a
    crash, runs no exit hook); their counters and histograms still count."""
    for path in directory.glob("gauge_live*_*.db"):
        pid = path.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not _running(int(pid)):
            multiprocess.mark_process_dead(int(pid), str(directory))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # no signal: only whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user's
        return True
    return True


class _EveryProcess:
    """Every process's figures (prometheus-client's ``MultiProcessCollector``), and each
    of our series no process has observed yet by its HELP and TYPE alone, as one process
    would list it (the files only hold series with a value)."""

    def __init__(self, directory: str) -> None:
        self.files = multiprocess.MultiProcessCollector(None, path=directory)

    def collect(self) -> Iterator[Metric]:
        observed = list(self.files.collect())
        yield from observed
        seen = {family.name for family in observed}
        for family in REGISTRY.collect():
            if family.name.startswith("medcode_") and family.name not in seen:
                yield Metric(family.name, family.documentation, family.type)

