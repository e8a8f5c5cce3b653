"""The trace of the request that records an event reaches the consumer that applies it:
the trace id is stored with the event, published as the envelope's correlation_id, and
the consumer's span is in that trace. Nothing is exported without OTEL_* settings."""

from __future__ import annotations

from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.concurrency import run_in_threadpool

from services.lookup.application import CodeSets
from services.lookup.domain import CodeEntry
from services.lookup.events import CATALOGUE
from services.shared import tracing
from services.shared.consumer import Consumer
from services.shared.log_bus import LogBus
from services.shared.search.model import Checkpoint
from services.shared.settings import Settings
from tests.conftest import chapters


class Seen:
    name = "seen"

    def __init__(self) -> None:
        self.stored: Checkpoint | None = None

    async def checkpoint(self, source: str) -> Checkpoint | None:
        return self.stored

    async def apply(self, source: str, deliveries: list) -> None:  # type: ignore[type-arg]
        last = deliveries[-1]
        self.stored = Checkpoint(self.name, source, last.envelope.position, last.cursor)


def test_nothing_is_exported_unless_otel_variables_say_where() -> None:
    assert not tracing.exporting({})
    assert tracing.exporting({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing.exporting({"OTEL_TRACES_EXPORTER": "otlp"})


async def test_the_request_trace_travels_in_the_envelope_to_the_consumer(
    tmp_path: Path, icd10cm_release: tuple[str, list[CodeEntry]]
) -> None:
    tracing.configure("medcode-tests")
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    spans = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    app = CodeSets(env=Settings(data_dir=tmp_path).event_store_env("lookup"))
    try:
        entries = chapters(icd10cm_release[1], "3")[:5]
        with tracing.tracer().start_as_current_span("request") as request:
            trace_id = request.get_span_context().trace_id
            await run_in_threadpool(app.import_release, "ICD10CM", "2026-04-01", "t", entries)
        untraced = chapters(icd10cm_release[1], "3")[:6]  # one more code, outside any trace
        await run_in_threadpool(app.import_release, "ICD10CM", "2026-10-01", "t", untraced)
        envelopes = list(CATALOGUE.iterate(app))
        traced = [e for e in envelopes if e.correlation_id is not None]
        assert traced and all(e.correlation_id.int == trace_id for e in traced)
        assert any(e.correlation_id is None for e in envelopes)

        bus = LogBus()
        bus.register(app, CATALOGUE)
        await Consumer(Seen(), bus, "lookup").run_until(envelopes[-1].position)
        consumed = [s for s in spans.get_finished_spans() if s.name == "consume seen:lookup"]
        assert consumed and consumed[0].context.trace_id == trace_id
        assert consumed[0].attributes["messaging.destination.name"] == "lookup"
    finally:
        app.close()
