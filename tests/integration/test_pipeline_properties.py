"""Property: whatever arrives, parse → bus → fate answers with exactly one defined outcome.

Hypothesis throws bytes, JSON and near-valid envelopes (the contract's example of every
command and query type, mutated: fields dropped, unknown ones added, types changed, extreme
lengths, unicode, huge numbers, negative amounts) at the real parser, command bus and
services over a migrated database (in-memory SQLite, then PostgreSQL), with a publisher and
relay that only record (``decide`` is what the consumer runs for every delivery).

For every delivery: ``parse`` and ``process`` never raise; the decision is an ack (applied,
duplicate, rejected, answered), an immediate dead letter (invalid_message), or a retry/dead
letter of a transient fault; never ``unexpected`` (that would be a bug, found by generated
input). A dead letter's ``CommandDeadLettered`` report can always be built. The database is
seeded once per test function with a customer, an account, a conversation and an FAQ, and
mutations draw those ids, so generated commands reach the handlers, not only the parser.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import (
    COMMAND_TYPES,
    QUERY_TYPES,
    REJECTION_REASONS,
    CommandRejected,
    example_message,
    parse_event,
)
from contracts.fields import ErrorType
from contracts.topology import DEFAULT_MAX_BODY_BYTES, HEADER_ATTEMPTS
from tests.fakes import FakePublisher
from tests.integration.conftest import Backend
from worker.bus import CommandBus, dead_lettered
from worker.handlers import HANDLERS
from worker.messaging.consumer import decide, failure_headers
from worker.messaging.delivery import Delivery, Parsed, parse
from worker.messaging.fate import Ack, DeadLetter, Decision, Retry, RetryPolicy, outcome_of
from worker.repositories import PendingEvent

pytestmark = pytest.mark.integration

REQUEST_TYPES = sorted(COMMAND_TYPES | QUERY_TYPES)
REPLY_TO = "amq.gen-property-replies"
ACKED = {"applied", "duplicate", "rejected", "answered"}
REASONS = REJECTION_REASONS
MAX_BODY = DEFAULT_MAX_BODY_BYTES


# --- recording fakes --------------------------------------------------------------------------


@dataclass
class RecordingRelay:
    """Stands in for OutboxRelay: remembers what it was asked to publish."""

    published: list[PendingEvent] = field(default_factory=list)

    async def publish_committed(self, events: Sequence[PendingEvent]) -> bool:
        self.published.extend(events)
        return True


class World:
    """A bus over a seeded database, and the ids the seed created.

    A plain class with a short ``repr``: Hypothesis prints it with every failing example.
    """

    def __init__(self, backend: Backend) -> None:
        self.relay = RecordingRelay()
        self.publisher = FakePublisher()
        self.policy = RetryPolicy(5, (1, 5, 30))
        factory = backend.session_factory
        self.bus = CommandBus(HANDLERS, lambda kind: kind(factory), self.relay, self.publisher)
        self.ids: dict[str, list[str]] = {}

    async def process(self, item: Delivery) -> tuple[Parsed, Decision]:
        """What the consumer does with one delivery, up to (not including) settling it."""
        parsed = parse(item, max_body_bytes=MAX_BODY)
        return parsed, await decide(self.bus, self.policy, parsed)

    def __repr__(self) -> str:
        return f"World(ids={self.ids})"


async def apply(world: World, message_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Apply a valid command; the payload of its success event."""
    body = example_message(message_type, payload)
    body["message_id"] = str(uuid.uuid4())
    delivery = Delivery(json.dumps(body).encode(), message_type, type=message_type)
    before = len(world.relay.published)
    _, decision = await world.process(delivery)
    assert outcome_of(decision) == "applied", (message_type, decision)
    event = json.loads(world.relay.published[before].body)
    return event["payload"]  # type: ignore[no-any-return]


async def seeded_world(backend: Backend) -> World:
    """A pipeline over ``backend`` with a customer, account, conversation and FAQ in it."""
    w = World(backend)
    customer = await apply(w, "CreateCustomer", {"email": "seed@example.com", "full_name": "S"})
    vip = await apply(
        w, "CreateCustomer", {"email": "vip@example.com", "full_name": "V", "is_vip": True}
    )
    cid = customer["customer_id"]
    account = await apply(w, "OpenAccount", {"customer_id": cid, "account_type": "current"})
    number = account["account_number"]
    await apply(
        w,
        "RecordTransaction",
        {
            "account_number": number,
            "amount": "1000.00",
            "direction": "credit",
            "description": "seed",
            "reference": "SEED-1",
        },
    )
    conversation = await apply(w, "StartConversation", {"customer_id": cid, "channel": "chat"})
    conv_id = conversation["conversation_id"]
    escalated = await apply(
        w, "EscalateConversation", {"conversation_id": conv_id, "reason": "seed"}
    )
    faq = await apply(
        w,
        "UpsertFaq",
        {"question": "Seed?", "answer": "Yes.", "keywords": ["seed"], "category": "seed"},
    )
    w.ids = {
        "customer_id": [cid, vip["customer_id"], "CUST-000001", "CUST-999999"],
        "account_number": [number, "40000001", "00000000"],
        "conversation_id": [conv_id, conv_id.upper(), str(uuid.uuid4())],
        "escalation_id": [escalated["escalation_id"], "ESC-000042"],
        "faq_id": [faq["faq_id"], "FAQ-999999"],
        "email": ["seed@example.com", "SEED@EXAMPLE.COM", "vip@example.com"],
    }
    w.relay.published.clear()
    return w


@pytest.fixture
async def world(backend: Backend) -> World:
    """One bus and one seeded database for the whole test function (every example)."""
    return await seeded_world(backend)


# --- strategies -------------------------------------------------------------------------------

HUGE = [10**18, -(10**18), 2**63, 2**64 + 1, 10**400, -1, 0, 1.5, -0.0, 1e308]
EDGE_STRINGS = [
    "",
    " ",
    "\t\n",
    "\x00",
    "\u200b",
    "0",
    "-1",
    "-12.50",
    "0.00",
    "0.001",
    "1e3",
    "NaN",
    "Infinity",
    "999999999999999.99",
    "1000000000000000.00",
    "00012.50",
    "12,50",
    "é" * 300,
    "🙂" * 200,
    "x" * 10_001,
    "a" * 5_000,
    "Robert'); DROP TABLE customers;--",
    "%s %(x)s {0}",
    "ℕ𝔞𝔪𝔢",
    "ADA@EXAMPLE.COM",
    "a@b.co",
    "not-a-uuid",
    "0B6F3C52-8A1D-4F0E-9D8A-3F2B7C1E5A90",
    "2026-11-21T10:00:00",
    "2026-11-21T10:00:00Z",
    "9999-12-31T23:59:59+14:00",
]
# Plausible values per payload field, so that mutated commands often pass validation.
FIELD_VALUES: dict[str, list[Any]] = {
    "amount": ["0.01", "12.50", "999999999999999.99", "999999999999999", "-5.00", "0", "1.234"],
    "direction": ["credit", "debit", "CREDIT", "sideways"],
    "account_type": ["current", "savings", "credit_card", "cheque"],
    "currency": ["GBP", "EUR", "gbp", "XXXX"],
    "channel": ["chat", "email", "phone", "fax"],
    "role": ["customer", "agent", "system", "bot"],
    "priority": ["normal", "high", "urgent", "low", None],
    "is_vip": [True, False, "true", 1],
    "is_active": [True, False, 0],
    "interest_rate": ["0", "100", "100.0001", "3.25", "-1", "0.00001"],
    "limit": [1, 50, 51, 100, 1000, 0, -1, True],
    "cursor": ["eyJrIjoxfQ", "x", "!!!!", "a" * 512],
    "keyword": ["seed", "pin", "%", "_", "\\", "'"],
    "keywords": [[], ["seed"], ["x"] * 50, ["x"] * 51, [""], ["a" * 51]],
    "account_numbers": [["40000001"], [], ["x"] * 1000, ["x"] * 1001, ["10000001"] * 3],
    "phone": ["+44 20 7946 0958", "12", "+" + "1" * 40, None],
    "reference": ["SEED-1", "REF-NEW", "has space", "r" * 64, "r" * 65],
    "content": ["hi", "x" * 10_000, "x" * 10_001, "\n\n"],
}
FRESH: dict[str, Callable[[], str]] = {
    "email": lambda: f"p-{uuid.uuid4().hex[:12]}@example.com",
    "code": lambda: f"P-{uuid.uuid4().hex[:12]}",
    "conversation_id": lambda: str(uuid.uuid4()),
    "reference": lambda: f"REF-{uuid.uuid4().hex[:12]}",
}
"""Values nobody used yet, for the fields that must be unique."""
ID_FIELDS = ("customer_id", "account_number", "conversation_id", "escalation_id", "faq_id", "email")
ALL_FIELDS = sorted(
    {k for t in REQUEST_TYPES for k in example_message(t)["payload"]}
    | set(FIELD_VALUES)
    | set(ID_FIELDS)
)
MUTATION_COUNTS = (0, 0, 0, 1, 1, 1, 2, 3, 4)
"""How many mutations a message gets: often none, so that handlers run, not only the parser."""
REUSED_IDS = ("dup-1", "dup-2")
ENVELOPE_FIELDS = ("message_id", "type", "version", "correlation_id", "occurred_at", "payload")

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
edge_values = st.sampled_from(EDGE_STRINGS) | st.sampled_from(HUGE) | json_values


@st.composite
def field_value(draw: st.DrawFn, name: str, ids: dict[str, list[str]]) -> Any:
    """A value for payload field ``name``: a seeded id, a plausible value, or anything."""
    choices = []
    if name in ids:
        choices.append(st.sampled_from(ids[name]))
    if name in FIELD_VALUES:
        choices.append(st.sampled_from(FIELD_VALUES[name]))
    choices += [edge_values, st.text(max_size=120)]
    return draw(st.one_of(*choices))


@st.composite
def mutated_message(draw: st.DrawFn, ids: dict[str, list[str]]) -> dict[str, Any]:
    """A contract example of some request type, with a fresh id and a few mutations."""
    message_type = draw(st.sampled_from(REQUEST_TYPES))
    message = example_message(message_type)
    fresh = draw(st.sampled_from([True] * 7 + [False]))  # now and then, an id seen before
    # Fresh ids come from uuid4, not Hypothesis: its simple values repeat a lot, and every
    # repeat would be a duplicate that never reaches a handler.
    message["message_id"] = str(uuid.uuid4()) if fresh else draw(st.sampled_from(REUSED_IDS))
    payload = message["payload"]
    for name in sorted(payload):  # point at seeded rows, or at nothing seen before
        choice = draw(st.sampled_from(["keep", "seeded", "seeded", "fresh"]))
        if choice == "seeded" and name in ids:
            payload[name] = draw(st.sampled_from(ids[name]))
        elif choice in {"seeded", "fresh"} and name in FRESH:
            payload[name] = FRESH[name]()
    for _ in range(draw(st.sampled_from(MUTATION_COUNTS))):
        action = draw(
            st.sampled_from(
                ["drop", "add", "set-payload", "set-payload", "set-envelope", "payload", "retype"]
            )
        )
        payload = message.get("payload")
        if action == "drop":
            target = payload if isinstance(payload, dict) and draw(st.booleans()) else message
            if target:
                target.pop(draw(st.sampled_from(sorted(target))), None)
        elif action == "add":
            target = payload if isinstance(payload, dict) and draw(st.booleans()) else message
            target[draw(st.text(min_size=1, max_size=20))] = draw(edge_values)
        elif action == "set-payload" and isinstance(payload, dict):
            name = draw(
                st.sampled_from([*payload, *ALL_FIELDS]) if payload else st.sampled_from(ALL_FIELDS)
            )
            payload[name] = draw(field_value(name, ids))
        elif action == "set-envelope":
            name = draw(st.sampled_from(ENVELOPE_FIELDS))
            message[name] = draw(edge_values | st.sampled_from(REQUEST_TYPES))
        elif action == "payload":
            message["payload"] = draw(edge_values)
        elif action == "retype":
            message["type"] = draw(st.sampled_from(REQUEST_TYPES))
    return message


def encode(draw: st.DrawFn, message: Any) -> bytes:
    """JSON in one of several spellings."""
    ascii_only = draw(st.booleans())
    indent = draw(st.sampled_from([None, None, 2]))
    return json.dumps(message, ensure_ascii=ascii_only, indent=indent).encode()


@st.composite
def body(draw: st.DrawFn, ids: dict[str, list[str]]) -> bytes:
    """A delivery body: mostly near-valid envelopes, sometimes anything at all."""
    kind = draw(
        st.sampled_from(
            ["mutated"] * 8 + ["bytes", "json", "truncated", "nested", "huge", "not-utf8"]
        )
    )
    if kind == "mutated":
        return encode(draw, draw(mutated_message(ids)))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "json":
        return encode(draw, draw(json_values))
    if kind == "truncated":
        whole = encode(draw, draw(mutated_message(ids)))
        return whole[: draw(st.integers(0, max(0, len(whole) - 1)))]
    if kind == "nested":
        depth = draw(st.sampled_from([64, 500, 5_000, 100_000]))
        opener = draw(st.sampled_from(["[", '{"a":']))
        closer = "]" if opener == "[" else "}"
        return (opener * depth + "1" + closer * depth).encode()
    if kind == "huge":
        base = example_message(draw(st.sampled_from(REQUEST_TYPES)))
        base["padding"] = "x" * (MAX_BODY + draw(st.integers(-200, 200)))
        return json.dumps(base).encode()
    valid = encode(draw, example_message(draw(st.sampled_from(REQUEST_TYPES))))
    cut = draw(st.integers(0, len(valid)))
    return valid[:cut] + b"\xff\xfe" + valid[cut:]


amqp_text = st.none() | st.text(max_size=300) | st.sampled_from(REQUEST_TYPES)


@st.composite
def delivery(draw: st.DrawFn, ids: dict[str, list[str]]) -> Delivery:
    """A delivery with a generated body and generated AMQP properties and headers."""
    headers: dict[str, object] = {}
    if draw(st.booleans()):
        headers[HEADER_ATTEMPTS] = draw(
            st.integers(-5, 10) | st.text(max_size=5) | st.binary(max_size=5)
        )
    if draw(st.booleans()):
        headers[draw(st.text(min_size=1, max_size=20))] = draw(st.text(max_size=20))
    return Delivery(
        body=draw(body(ids)),
        routing_key=draw(st.sampled_from(REQUEST_TYPES) | st.text(max_size=30)),
        headers=headers,
        message_id=draw(amqp_text | st.uuids().map(str)),
        correlation_id=draw(st.none() | st.text(max_size=40)),
        reply_to=draw(st.sampled_from([REPLY_TO, REPLY_TO, None])),
        content_type=draw(st.sampled_from(["application/json", None, "text/plain"])),
        type=draw(amqp_text),
        redelivered=draw(st.booleans()),
    )


# --- the property -----------------------------------------------------------------------------


def check_decision(parsed: Parsed, decision: Decision) -> None:
    """The decision is one of the contract's outcomes, and never ``unexpected``."""
    assert outcome_of(decision) != ErrorType.UNEXPECTED.value, f"unexpected error: {decision}"
    assert decision.attempt >= 1
    if isinstance(decision, Ack):
        assert decision.outcome in ACKED, decision
        assert parsed.request is not None
    elif decision.failure.error_type is ErrorType.INVALID_MESSAGE:
        assert isinstance(decision, DeadLetter), decision
        assert parsed.request is None, parsed
        assert parsed.invalid, parsed
    else:
        assert decision.failure.error_type is ErrorType.TRANSIENT, decision
        assert isinstance(decision, Retry | DeadLetter), decision


def check_effects(
    world: World, parsed: Parsed, decision: Decision, events: list[PendingEvent], replies: int
) -> None:
    """What was published matches the decision."""
    outcome = outcome_of(decision)
    if outcome == "applied":
        assert events, decision
        assert all(e.event_type != "CommandRejected" for e in events), events
    elif outcome == "rejected":
        assert [e.event_type for e in events] == ["CommandRejected"], events
        rejection = parse_event(events[0].body.encode())
        assert isinstance(rejection, CommandRejected)
        assert rejection.payload.reason in REASONS
        assert rejection.payload.command_message_id == parsed.message_id
    else:
        assert not events, (decision, events)
    if outcome == "answered":
        assert replies == 1
        assert world.publisher.replies[-1][0] == REPLY_TO
        parse_event(world.publisher.replies[-1][1].model_dump_json().encode())
    else:
        assert replies == 0, decision
    for event in events:
        parse_event(event.body.encode())  # every event is a valid contract message


async def run_one(world: World, item: Delivery) -> None:
    """Parse and process one delivery, and check everything the property promises."""
    published, replied = len(world.relay.published), len(world.publisher.replies)
    parsed, decision = await world.process(item)
    events = world.relay.published[published:]
    check_decision(parsed, decision)
    check_effects(world, parsed, decision, events, len(world.publisher.replies) - replied)
    if isinstance(decision, DeadLetter):
        headers = failure_headers(item, decision.failure)
        assert not any(k.lower().startswith("x-") for k in headers)
    if outcome_of(decision) in {"applied", "rejected"}:  # a redelivery is a no-op
        _, again = await world.process(item)
        assert outcome_of(again) == "duplicate", again
        assert len(world.relay.published) == published + len(events)


EXAMPLES = int(os.environ.get("WORKER_TEST_PROPERTY_EXAMPLES", "200"))
"""Examples of the main property per backend; raise it for a deeper hunt (5,000 examples per
backend found nothing the default does not, in about three minutes)."""
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
    database=None,
)


@PROPERTY
@given(data=st.data())
async def test_every_delivery_gets_exactly_one_defined_outcome(
    world: World, data: st.DataObject
) -> None:
    await run_one(world, data.draw(delivery(world.ids), label="delivery"))


@settings(PROPERTY, max_examples=max(1, EXAMPLES // 2))
@given(data=st.data())
async def test_every_dead_letter_can_be_reported(world: World, data: st.DataObject) -> None:
    """The consumer publishes a ``CommandDeadLettered`` for each dead letter; building it must
    not fail, whatever the AMQP ``message_id`` and ``type`` properties hold (they are the
    fallback when the body cannot be read). If it raised, the consumer would nack and requeue
    a message it had already copied to the DLQ, again and again."""
    item = data.draw(delivery(world.ids), label="delivery")
    parsed, decision = await world.process(item)
    if not isinstance(decision, DeadLetter):
        return
    report = dead_lettered(parsed.message_id, parsed.type, item.body, decision.failure)
    assert report.payload.error_type == decision.failure.error_type
    assert report.payload.attempts == decision.attempt
    parse_event(report.model_dump_json().encode())


@settings(PROPERTY, max_examples=max(1, EXAMPLES // 3))
@given(data=st.data())
async def test_money_movements_on_a_real_account_never_fail_unexpectedly(
    world: World, data: st.DataObject
) -> None:
    """Credits and debits of any valid size on the seeded account: applied or rejected."""
    amount = data.draw(
        st.sampled_from(["0.01", "12.50", "999999999999999.99", "500000000000000.00"])
        | st.decimals(min_value="0.01", max_value="999999999999999.99", places=2).map(str),
        label="amount",
    )
    message = example_message("RecordTransaction")
    message["message_id"] = str(uuid.uuid4())
    message["payload"].update(
        account_number=world.ids["account_number"][0],
        amount=amount,
        direction=data.draw(st.sampled_from(["credit", "credit", "debit"]), label="direction"),
        reference=f"REF-{uuid.uuid4().hex[:12]}",
    )
    body = json.dumps(message).encode()
    await run_one(world, Delivery(body, "RecordTransaction", type="RecordTransaction"))
