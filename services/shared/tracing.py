"""OpenTelemetry traces from the gateway, through service calls and events, to consumers.

* ``configure`` installs the SDK's tracer provider once per process. Spans are always
  made (their trace id is what logs and events carry), but **nothing is exported**
  unless the standard variables ask for it: ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
  ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (with the other ``OTEL_EXPORTER_OTLP_*``
  settings the exporter reads itself), or ``OTEL_TRACES_EXPORTER=otlp``;
  ``OTEL_SDK_DISABLED=true`` turns tracing off. ``OTEL_SERVICE_NAME`` names the process.
* Across HTTP, the W3C ``traceparent`` header (``inject`` / ``extract``).
* Across the event log, the trace id itself: ``CorrelatedMapper`` stores the current
  trace id with each domain event a command records, the envelope publishes it as
  ``correlation_id`` (a UUID whose 128 bits are the trace id), and a consumer's span
  joins that trace (``consuming``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.persistence import Mapper, StoredEvent
from opentelemetry import propagate, trace
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, TraceFlags

if TYPE_CHECKING:
    from services.shared.bus import Delivery

_configured = False
_tracer: trace.Tracer | None = None
_MAX_LINKS = 32
CORRELATION_KEY = "_correlation_id"  # stored alongside an event's own state


def exporting(env: Mapping[str, str]) -> bool:
    """Whether the standard OTEL_* variables ask for spans to be exported over OTLP."""
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "otlp"
    )


def configure(service: str, env: Mapping[str, str] | None = None) -> None:
    """Install the tracer provider for this process (idempotent)."""
    global _configured
    env = os.environ if env is None else env
    if _configured or env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME") or service})
    provider = TracerProvider(resource=resource)
    if exporting(env):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _configured = True


def tracer() -> trace.Tracer:
    """The process's tracer, made on first use. The SDK's provider makes a new one on
    every ``get_tracer`` (through a deprecation wrapper): about 1 % of a worker's time
    answering from the search cache (py-spy). One made before ``configure`` is the
    API's proxy, which hands its spans to the provider installed later."""
    global _tracer
    if _tracer is None:
        _tracer = trace.get_tracer("medcode")
    return _tracer


def current_correlation_id() -> UUID | None:
    """The active trace id as a UUID, or None outside any (sampled or not) trace."""
    context = trace.get_current_span().get_span_context()
    return UUID(int=context.trace_id) if context.is_valid else None


def inject(headers: MutableMapping[str, str]) -> None:
    """Add the current trace context (``traceparent``) to outgoing HTTP headers."""
    propagate.inject(headers)


def extract(headers: Mapping[str, str]) -> Any:
    """The trace context an incoming request carries, to start its span under."""
    return propagate.extract(headers)


def _remote(correlation: UUID) -> SpanContext:
    # Only the trace id travels in the envelope; the span id names the event itself
    # (its low 64 bits are as good as any), so the consumer's span sits in the trace.
    return SpanContext(trace_id=correlation.int, span_id=(correlation.int & (2**64 - 1)) or 1,
                       is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))


@contextmanager
def consuming(consumer: str, deliveries: Sequence[Delivery]) -> Iterator[trace.Span]:
    """A span for applying ``deliveries``, in the trace of the first event that has one,
    linked to the traces of the others."""
    correlations: list[UUID] = []
    for delivery in deliveries:
        cid = delivery.envelope.correlation_id
        if cid is not None and cid not in correlations:
            correlations.append(cid)
    parent = None
    if correlations:
        parent = trace.set_span_in_context(NonRecordingSpan(_remote(correlations[0])))
    links = [Link(_remote(c)) for c in correlations[1:_MAX_LINKS]]
    first, last = deliveries[0].envelope, deliveries[-1].envelope
    with tracer().start_as_current_span(
        f"consume {consumer}",
        context=parent,
        kind=SpanKind.CONSUMER,
        links=links,
        attributes={
            "messaging.system": "medcode",
            "messaging.destination.name": first.source,
            "messaging.consumer.group.name": consumer,
            "messaging.batch.message_count": len(deliveries),
            "medcode.position.first": first.position,
            "medcode.position.last": last.position,
        },
    ) as span:
        yield span


class CorrelatedMapper(Mapper[Any]):
    """eventsourcing's mapper, storing the current trace id with each new domain event.

    Set as ``MAPPER_TOPIC`` in every Application's environment. Events recorded outside
    any trace (imports from the command line, say) carry none. On the way out the id is
    an attribute of the domain event, read by ``EventCatalogue.envelope``.
    """

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        stored = super().to_stored_event(domain_event)
        correlation = getattr(domain_event, CORRELATION_KEY, None) or current_correlation_id()
        if correlation is None:
            return stored
        state = self.transcoder.decode(self._plain(stored.state))
        state[CORRELATION_KEY] = str(correlation)
        return StoredEvent(stored.originator_id, stored.originator_version, stored.topic,
                           self._wrapped(self.transcoder.encode(state)))

    def _plain(self, state: bytes) -> bytes:
        if self.cipher:
            state = self.cipher.decrypt(state)
        if self.compressor:
            state = self.compressor.decompress(state)
        return state

    def _wrapped(self, state: bytes) -> bytes:
        if self.compressor:
            state = self.compressor.compress(state)
        if self.cipher:
            state = self.cipher.encrypt(state)
        return state


def correlation_of(domain_event: Any) -> UUID | None:
    raw = getattr(domain_event, CORRELATION_KEY, None)
    return UUID(str(raw)) if raw else None
