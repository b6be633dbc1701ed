"""Names, headers and routing keys are exactly the contract's."""

from __future__ import annotations

import re
from typing import get_args

import pytest

import contracts
from contracts import (
    COMMAND_TYPES,
    EVENT_ROUTING_KEYS,
    EVENT_TYPES,
    MESSAGE_CLASSES,
    QUERY_TYPES,
    REJECTION_REASONS,
    RejectionReason,
    RequestType,
    RoutedEvent,
    partition_queue_name,
    retry_queue_name,
)

pytestmark = pytest.mark.unit

CONTRACT_ROUTING_KEYS = {
    "CustomerCreated": "customer.created",
    "CustomerUpdated": "customer.updated",
    "CustomerDeleted": "customer.deleted",
    "CustomerErased": "customer.erased",
    "AccountOpened": "account.opened",
    "AccountsFrozen": "account.frozen",
    "AccountsUnfrozen": "account.unfrozen",
    "TransactionRecorded": "transaction.recorded",
    "ConversationStarted": "conversation.started",
    "MessageAppended": "conversation.message_appended",
    "ConversationEscalated": "conversation.escalated",
    "ConversationResolved": "conversation.resolved",
    "ProductUpserted": "product.upserted",
    "FaqUpserted": "faq.upserted",
    "CommandRejected": "command.rejected",
    "CommandDeadLettered": "command.dead_lettered",
}


def test_event_routing_keys_are_the_contract_ones() -> None:
    assert dict(EVENT_ROUTING_KEYS) == CONTRACT_ROUTING_KEYS


@pytest.mark.parametrize("event_type", sorted(CONTRACT_ROUTING_KEYS))
def test_each_event_class_exposes_its_routing_key(event_type: str) -> None:
    cls = MESSAGE_CLASSES[event_type]

    assert issubclass(cls, RoutedEvent)
    assert cls.routing_key == CONTRACT_ROUTING_KEYS[event_type]


def test_query_result_is_never_routed_to_the_events_exchange() -> None:
    assert "QueryResult" in EVENT_TYPES
    assert "QueryResult" not in EVENT_ROUTING_KEYS
    assert not issubclass(MESSAGE_CLASSES["QueryResult"], RoutedEvent)


def test_topology_names_are_the_contract_defaults() -> None:
    assert contracts.COMMANDS_EXCHANGE == "fca.commands"
    assert contracts.COMMAND_QUEUE == "fca.worker.commands"
    assert contracts.COMMAND_QUEUE_BINDING_KEY == "#"
    assert contracts.EVENTS_EXCHANGE == "fca.events"
    assert contracts.DEAD_LETTER_QUEUE == "fca.worker.commands.dlq"
    assert contracts.EXCHANGE_TYPE == "topic"
    assert contracts.CONTENT_TYPE == "application/json"
    assert contracts.DEFAULT_MAX_BODY_BYTES == 256 * 1024


def test_v2_partition_names_are_the_contract_defaults() -> None:
    assert contracts.PARTITIONS_EXCHANGE == "fca.worker.commands.partitions"
    assert contracts.PARTITIONS_EXCHANGE_TYPE == "x-consistent-hash"
    assert contracts.DEFAULT_PARTITIONS == 16
    assert contracts.HEADER_ORDERING_KEY == "fca-ordering-key"
    assert (contracts.HEADER_TRACEPARENT, contracts.HEADER_TRACESTATE) == (
        "traceparent",
        "tracestate",
    )


@pytest.mark.parametrize(
    ("index", "name"),
    [
        (0, "fca.worker.commands.p00"),
        (7, "fca.worker.commands.p07"),
        (123, "fca.worker.commands.p123"),
    ],
)
def test_partition_queues_are_numbered_with_at_least_two_digits(index: int, name: str) -> None:
    assert partition_queue_name(index) == name


def test_partition_and_retry_queues_follow_a_renamed_command_queue() -> None:
    assert partition_queue_name(3, "acme.commands") == "acme.commands.p03"
    assert retry_queue_name(30, "acme.commands") == "acme.commands.retry.30s"
    assert retry_queue_name(30, command_queue="acme.commands") == "acme.commands.retry.30s"


@pytest.mark.parametrize("index", [-1, True, 1.0, "1"])
def test_partition_queue_name_needs_a_non_negative_whole_number(index: int) -> None:
    with pytest.raises(ValueError, match="non-negative integer"):
        partition_queue_name(index)


@pytest.mark.parametrize(
    "reply_to",
    [
        "amq.rabbitmq.reply-to",
        "amq.rabbitmq.reply-to.g1h2AA==",
        "amq.gen-JzTY20BRgKO",
        "fca.reply.agent-1",
    ],
)
def test_the_default_reply_to_pattern_accepts_reply_queues(reply_to: str) -> None:
    assert re.match(contracts.DEFAULT_REPLY_TO_PATTERN, reply_to)


@pytest.mark.parametrize(
    "reply_to",
    ["fca.worker.commands", "fca.worker.commands.dlq", "billing.inbox", "xfca.reply.1", "amq.gen"],
)
def test_the_default_reply_to_pattern_refuses_other_queues(reply_to: str) -> None:
    assert not re.match(contracts.DEFAULT_REPLY_TO_PATTERN, reply_to)


def test_header_names_are_the_contract_ones_and_never_start_with_x() -> None:
    headers = {
        contracts.HEADER_ERROR_TYPE: "fca-error-type",
        contracts.HEADER_ERROR_MESSAGE: "fca-error-message",
        contracts.HEADER_ATTEMPTS: "fca-attempts",
        contracts.HEADER_FIRST_FAILED_AT: "fca-first-failed-at",
        contracts.HEADER_LAST_FAILED_AT: "fca-last-failed-at",
        contracts.HEADER_ORIGINAL_ROUTING_KEY: "fca-original-routing-key",
        contracts.HEADER_REPLAY_COUNT: "fca-replay-count",
    }
    assert all(name == expected for name, expected in headers.items())
    assert not any(name.lower().startswith("x-") for name in headers)


@pytest.mark.parametrize(
    ("delay", "name"),
    [(1, "fca.worker.commands.retry.1s"), (300, "fca.worker.commands.retry.300s")],
)
def test_retry_queues_live_under_the_command_queue_name(delay: int, name: str) -> None:
    assert retry_queue_name(delay) == name


@pytest.mark.parametrize("delay", [0, -5, True, 1.5])
def test_retry_queue_name_needs_a_positive_whole_number_of_seconds(delay: int) -> None:
    with pytest.raises(ValueError, match="positive integer"):
        retry_queue_name(delay)


def test_rejection_reasons_cover_every_contract_code() -> None:
    contract_codes = {
        "email_taken",
        "customer_not_found",
        "accounts_not_found",
        "account_not_found",
        "account_frozen",
        "insufficient_funds",
        "duplicate_reference",
        "conversation_not_found",
        "conversation_closed",
        "conversation_exists",
        "already_escalated",
        "faq_not_found",
    }
    assert contract_codes <= REJECTION_REASONS
    # Our extensions, reported on the issue: a bad query cursor and a balance over the limit.
    extensions = {"invalid_cursor", "balance_limit_exceeded"}
    assert REJECTION_REASONS - contract_codes == extensions


def test_rejection_reason_enum_iterates_over_exactly_the_rejection_reasons() -> None:
    assert {reason.value for reason in RejectionReason} == REJECTION_REASONS
    assert RejectionReason("email_taken") == "email_taken"


def test_error_types_are_the_dead_letter_header_values() -> None:
    assert {e.value for e in contracts.ErrorType} == {"invalid_message", "transient", "unexpected"}


def test_request_type_literal_lists_every_command_and_query() -> None:
    assert set(get_args(RequestType)) == COMMAND_TYPES | QUERY_TYPES
