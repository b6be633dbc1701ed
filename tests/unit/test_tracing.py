"""Which exporter the OTEL_* environment selects, and carrying a stored trace context."""

from __future__ import annotations

import pytest
from opentelemetry import trace

from worker.observability.tracing import (
    add_trace_ids,
    continued,
    current_context,
    delivery_context,
    exporter_name,
    handling_span,
    outgoing_headers,
)

pytestmark = pytest.mark.unit

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "none"),  # off unless configured
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "otlp"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, "otlp"),
        ({"OTEL_TRACES_EXPORTER": "console"}, "console"),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, "none"),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, "none"),
        ({"OTEL_TRACES_EXPORTER": "otlp,console"}, "otlp"),
    ],
)
def test_the_standard_environment_selects_the_exporter(
    environ: dict[str, str], expected: str
) -> None:
    assert exporter_name(environ) == expected


def test_there_is_no_context_to_keep_outside_a_trace() -> None:
    assert current_context() == {}


def test_a_stored_context_is_the_current_one_inside_the_block_only() -> None:
    with continued({"traceparent": PARENT}):
        kept = current_context()
        span = trace.get_current_span().get_span_context()
    assert kept["traceparent"] == PARENT
    assert format(span.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert current_context() == {}


def test_nothing_stored_changes_nothing() -> None:
    with continued(None):
        assert current_context() == {}


def test_a_line_logged_inside_a_trace_names_it_and_outside_names_none() -> None:
    with continued({"traceparent": PARENT}):
        inside = dict(add_trace_ids(None, "info", {"event": "x"}))
    outside = dict(add_trace_ids(None, "info", {"event": "x"}))
    assert inside == {
        "event": "x",
        "trace_id": "0af7651916cd43dd8448eb211c80319c",
        "span_id": "b7ad6b7169203331",
    }
    assert outside == {"event": "x"}


def test_with_nothing_recording_the_handling_span_leaves_the_deliverys_context_current() -> None:
    with continued({"traceparent": PARENT}), handling_span("CreateCustomer handle", "m-1") as span:
        kept = current_context()
        span.set_attribute("fca.outcome", "applied")  # accepted, recorded nowhere
    assert kept["traceparent"] == PARENT  # the events staged here carry the caller's context
    assert not span.is_recording()


def test_a_deliverys_trace_is_current_while_it_is_handled() -> None:
    headers = {"traceparent": PARENT, "tracestate": "vendor=1", "fca-attempts": 2}
    with delivery_context(headers):
        inside = current_context()
        published = outgoing_headers()
    assert inside == published == {"traceparent": PARENT, "tracestate": "vendor=1"}
    assert current_context() == {}


def test_a_delivery_without_a_trace_leaves_the_context_alone() -> None:
    with continued({"traceparent": PARENT}), delivery_context({"fca-attempts": 1}):
        assert current_context()["traceparent"] == PARENT


def test_an_event_is_published_with_the_context_it_was_staged_in() -> None:
    staged = {"traceparent": PARENT}
    assert outgoing_headers(staged) == staged  # not the (empty) current one
    assert outgoing_headers({}) == {}
