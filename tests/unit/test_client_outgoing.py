"""fca_client prepares every message as the worker will read it: envelope, key, actor, trace."""

from __future__ import annotations

import json
import subprocess
import sys
import types
import uuid
from pathlib import Path

import pytest

from contracts import (
    HEADER_ORDERING_KEY,
    CreateCustomer,
    FreezeAccounts,
    GetCustomer,
    InvalidMessage,
    body_digest_id,
    ordering_key,
    parse_message,
)
from fca_client import build, new_message_id, split_urls
from fca_client import tracing as tracing_module
from fca_client.outgoing import prepare, prepare_raw
from fca_client.tracing import trace_headers
from testkit.factories import unique_email

pytestmark = pytest.mark.unit

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
ROOT = Path(__file__).resolve().parents[2]


def create_customer(**envelope: str) -> CreateCustomer:
    return build(CreateCustomer, {"email": unique_email(), "full_name": "Ada"}, **envelope)


def test_build_fills_a_fresh_uuid_message_id_and_the_creation_time() -> None:
    first, second = create_customer(), create_customer()

    assert uuid.UUID(first.message_id) != uuid.UUID(second.message_id)
    assert first.occurred_at is not None
    assert first.occurred_at.utcoffset() is not None
    assert isinstance(uuid.UUID(new_message_id()), uuid.UUID)


def test_build_keeps_the_given_envelope_fields() -> None:
    command = create_customer(message_id="m-1", correlation_id="chat-42", actor="agent:7")

    assert (command.message_id, command.correlation_id, command.actor) == (
        "m-1",
        "chat-42",
        "agent:7",
    )


def test_build_refuses_an_invalid_payload_without_quoting_it() -> None:
    secret = "not-an-email-but-personal"
    with pytest.raises(InvalidMessage) as caught:
        build(CreateCustomer, {"email": secret, "full_name": "Ada", "shoe_size": 44})

    assert caught.value.type == "CreateCustomer"
    assert "payload" in caught.value.reason
    assert secret not in str(caught.value)
    assert "shoe_size" not in str(caught.value)


def test_prepare_sets_the_ordering_key_header_the_contract_computes() -> None:
    freeze = build(FreezeAccounts, {"account_numbers": ["ACC-1"], "reason": "fraud"})

    outgoing = prepare(freeze)

    assert outgoing.headers == {HEADER_ORDERING_KEY: "account_number:ACC-1"}
    assert outgoing.headers[HEADER_ORDERING_KEY] == ordering_key(parse_message(outgoing.body))
    assert outgoing.routing_key == "FreezeAccounts"


def test_a_query_is_keyed_by_its_message_id() -> None:
    query = build(GetCustomer, {"email": unique_email()}, message_id="q-1")

    assert prepare(query).headers[HEADER_ORDERING_KEY] == "message_id:q-1"


def test_the_client_actor_fills_only_a_message_without_one() -> None:
    anonymous, named = create_customer(), create_customer(actor="agent:1")

    assert prepare(anonymous, actor="chat-agent").message.actor == "chat-agent"  # type: ignore[union-attr]
    assert prepare(named, actor="chat-agent").message.actor == "agent:1"  # type: ignore[union-attr]
    assert "actor" not in json.loads(prepare(anonymous).body)  # v1 readers see v1 bodies


def test_prepare_reads_the_body_back_so_an_unvalidated_model_is_refused() -> None:
    sneaky = CreateCustomer.model_construct(
        message_id="m-2", type="CreateCustomer", payload={"email": "x"}
    )

    with pytest.raises(InvalidMessage):
        prepare(sneaky)


def test_an_answer_is_recognised_by_message_id_and_correlation_id() -> None:
    plain = prepare(create_customer(message_id="m-3"))
    correlated = prepare(create_customer(message_id="m-4", correlation_id="chat-42"))

    assert plain.causation_ids == {"m-3"}
    assert plain.reply_correlation_ids == {"m-3"}
    assert correlated.reply_correlation_ids == {"chat-42", "m-4"}


def test_given_trace_context_is_sent_and_malformed_context_refused() -> None:
    assert trace_headers({"traceparent": TRACEPARENT, "tracestate": "k=v", "baggage": "x"}) == {
        "traceparent": TRACEPARENT,
        "tracestate": "k=v",
    }
    for bad in ("00-abc-def-01", f"00-{'0' * 32}-b7ad6b7169203331-01", TRACEPARENT.upper()):
        with pytest.raises(ValueError, match="traceparent"):
            trace_headers({"traceparent": bad})
    with pytest.raises(ValueError, match="tracestate"):
        trace_headers({"tracestate": "k=v"})


def test_the_active_opentelemetry_context_is_injected_when_none_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    propagate = types.ModuleType("opentelemetry.propagate")
    propagate.inject = lambda carrier: carrier.update(  # type: ignore[attr-defined]
        {"traceparent": TRACEPARENT, "tracestate": "vendor=1", "baggage": "user=1"}
    )
    monkeypatch.setitem(sys.modules, "opentelemetry", types.ModuleType("opentelemetry"))
    monkeypatch.setitem(sys.modules, "opentelemetry.propagate", propagate)
    tracing_module._otel_inject.cache_clear()
    try:
        outgoing = prepare(create_customer())
    finally:
        tracing_module._otel_inject.cache_clear()

    assert outgoing.headers["traceparent"] == TRACEPARENT
    assert outgoing.headers["tracestate"] == "vendor=1"
    assert "baggage" not in outgoing.headers


def test_no_trace_headers_without_opentelemetry_or_an_active_span(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.propagate", None)  # not importable
    tracing_module._otel_inject.cache_clear()
    try:
        assert trace_headers() == {}
    finally:
        tracing_module._otel_inject.cache_clear()


def test_real_opentelemetry_injects_the_current_span() -> None:
    trace = pytest.importorskip("opentelemetry.trace")
    context = trace.SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=False,
        trace_flags=trace.TraceFlags(1),
    )
    tracing_module._otel_inject.cache_clear()
    with trace.use_span(trace.NonRecordingSpan(context)):
        assert trace_headers() == {"traceparent": TRACEPARENT}


def test_a_raw_body_is_published_as_given_and_keyed_when_it_is_valid() -> None:
    valid = prepare(create_customer(message_id="m-5")).body
    junk = b'{"type": "CreateCustomer", "payload": {}}'

    keyed = prepare_raw(valid, routing_key="CreateCustomer", message_id="m-5")
    unkeyed = prepare_raw(junk, routing_key="CreateCustomer", message_id="m-6")

    assert keyed.body == valid
    assert keyed.headers[HEADER_ORDERING_KEY].startswith("email:")
    assert unkeyed.body == junk
    assert HEADER_ORDERING_KEY not in unkeyed.headers
    # The worker names a body it cannot read by its digest.
    assert unkeyed.causation_ids == {"m-6", body_digest_id(junk)}
    assert unkeyed.reply_correlation_ids is None


def test_broker_urls_split_like_the_workers_setting() -> None:
    assert split_urls(" amqp://a/ , ,amqp://b/") == ["amqp://a/", "amqp://b/"]
    assert split_urls(["amqp://a/"]) == ["amqp://a/"]
    with pytest.raises(ValueError, match="at least one"):
        split_urls(" , ")


def test_the_client_imports_without_the_worker() -> None:
    program = (
        "import importlib.abc, sys\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'worker', 'sqlalchemy', 'structlog', 'testkit'}:\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import fca_client, fca_client.testing\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'worker'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
