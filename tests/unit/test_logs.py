"""JSON logs: one object a line, carrying the correlation id (the trace id) of the work."""

from __future__ import annotations

import io
import json
import logging
import sys
from uuid import UUID

import pytest

from services.shared import logs, tracing


def test_a_line_logged_inside_a_trace_carries_its_correlation_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tracing.configure("medcode-test", {})
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        logs.configure({"LOG_FORMAT": "json", "LOG_LEVEL": "INFO"})
        log = logging.getLogger("medcode.test")
        log.info("outside any trace")
        with tracing.tracer().start_as_current_span("work") as span:
            log.info("inside %s", "the trace", extra={"code": "I21.9"})
            trace_id = span.get_span_context().trace_id
    finally:
        root.handlers[:], root.level = handlers, level
    outside, inside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert outside["message"] == "outside any trace" and "correlation_id" not in outside
    assert inside["message"] == "inside the trace" and inside["level"] == "info"
    assert UUID(inside["correlation_id"]).int == trace_id != 0
    assert inside["code"] == "I21.9" and inside["logger"] == "medcode.test"
