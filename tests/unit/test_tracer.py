"""The process's tracer: made once, whether taken before tracing is configured or after."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from services.shared import tracing
early = tracing.tracer()
tracing.configure("medcode-test", {})
spans = InMemorySpanExporter()
trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(spans))
with early.start_as_current_span("early"):
    pass
with tracing.tracer().start_as_current_span("later"):
    pass
assert tracing.tracer() is early
print(sorted(s.name for s in spans.get_finished_spans()))
"""


def test_a_tracer_taken_before_tracing_is_configured_records_into_it() -> None:
    """One taken early (at an import, by a test) still hands its spans to the provider
    installed later. In a process of its own: a process installs one provider."""
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2], check=True)
    assert done.stdout.strip() == "['early', 'later']"
