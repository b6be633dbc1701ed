"""W3C trace context for an outgoing message: the caller's, or the active OpenTelemetry one.

OpenTelemetry is optional: when ``opentelemetry-api`` is importable and no trace context is
given, the globally configured propagator injects the active context (nothing when no span
is recording). Only the contract's two headers, ``traceparent`` and ``tracestate``, are sent.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from functools import cache
from typing import Final

from contracts import HEADER_TRACEPARENT, HEADER_TRACESTATE

__all__ = ["trace_headers"]

_TRACEPARENT: Final = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
_MAX_TRACESTATE: Final = 512

Injector = Callable[[dict[str, str]], None]


def trace_headers(trace: Mapping[str, str] | None = None) -> dict[str, str]:
    """``traceparent``/``tracestate`` from ``trace``, else from OpenTelemetry, else none.

    Raises:
        ValueError: ``trace`` holds a malformed ``traceparent`` or ``tracestate``.
    """
    if trace is None:
        inject = _otel_inject()
        if inject is None:
            return {}
        carrier: dict[str, str] = {}
        inject(carrier)
        return _pick(carrier, strict=False)
    return _pick(trace, strict=True)


def _pick(carrier: Mapping[str, str], *, strict: bool) -> dict[str, str]:
    parent = carrier.get(HEADER_TRACEPARENT)
    if parent is None:
        if strict and carrier.get(HEADER_TRACESTATE) is not None:
            raise ValueError("tracestate needs a traceparent")
        return {}
    if not _valid_parent(parent):
        if strict:
            raise ValueError("traceparent is not W3C trace context (00-<32 hex>-<16 hex>-<2 hex>)")
        return {}
    headers = {HEADER_TRACEPARENT: parent}
    state = carrier.get(HEADER_TRACESTATE)
    if state:
        if not _valid_state(state):
            if strict:
                raise ValueError("tracestate must be printable ASCII of at most 512 characters")
            return headers
        headers[HEADER_TRACESTATE] = state
    return headers


def _valid_parent(value: str) -> bool:
    if not _TRACEPARENT.match(value):
        return False
    version, trace_id, span_id, _ = value.split("-")
    return version != "ff" and trace_id != "0" * 32 and span_id != "0" * 16


def _valid_state(value: str) -> bool:
    return len(value) <= _MAX_TRACESTATE and all(" " <= char <= "~" for char in value)


@cache
def _otel_inject() -> Injector | None:
    """OpenTelemetry's ``propagate.inject`` if ``opentelemetry-api`` is installed, else None."""
    try:
        module = importlib.import_module("opentelemetry.propagate")
    except ImportError:
        return None
    inject: Injector = module.inject
    return inject
