"""ordering_key follows the contract's v2 rule, driven by each command's ordering_fields."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from contracts import (
    COMMAND_CLASSES,
    QUERY_TYPES,
    CommandEnvelope,
    RecordTransaction,
    RequestEnvelope,
    example_message,
    ordering_key,
    parse_message,
    type_name,
)

pytestmark = pytest.mark.unit

CONTRACT_PRIORITY = (
    "account_numbers",
    "conversation_id",
    "escalation_id",
    "account_number",
    "customer_id",
    "code",
    "faq_id",
    "email",
)
"""The payload fields that key a command, by priority, as CONTRACT.md "Partitions" lists them.

A command whose key field is not in this list needs the contract (and this list) to change.
"""

CONVERSATION = "0b6f3c52-8a1d-4f0e-9d8a-3f2b7c1e5a90"
MID = "7b6f1c1e-0000-4000-8000-000000000001"


def request(message_type: str, **changes: Any) -> RequestEnvelope:
    """The example of ``message_type`` with payload fields changed (None: removed)."""
    body = example_message(message_type)
    body["payload"] = {**body["payload"], **changes}
    body["payload"] = {k: v for k, v in body["payload"].items() if v is not None}
    message = parse_message(json.dumps(body).encode())
    assert isinstance(message, RequestEnvelope)
    return message


@pytest.mark.parametrize("command", COMMAND_CLASSES, ids=type_name)
def test_declared_ordering_fields_are_the_payloads_key_fields_in_contract_order(
    command: type[CommandEnvelope],
) -> None:
    payload_fields = command.model_fields["payload"].annotation.model_fields  # type: ignore[union-attr]

    expected = tuple(name for name in CONTRACT_PRIORITY if name in payload_fields)

    assert command.ordering_fields == expected


EXPECTED_KEYS = {
    "CreateCustomer": "email:ada@example.com",
    "UpdateCustomer": "customer_id:CUST-000001",
    "DeleteCustomer": "customer_id:CUST-000001",
    "EraseCustomer": "customer_id:CUST-000001",
    "OpenAccount": "customer_id:CUST-000001",
    "FreezeAccounts": f"message_id:{MID}",  # two accounts: no single key
    "UnfreezeAccounts": f"message_id:{MID}",
    "RecordTransaction": "account_number:40000001",
    "StartConversation": f"conversation_id:{CONVERSATION}",
    "EscalateConversation": f"conversation_id:{CONVERSATION}",
    "ResolveConversation": "escalation_id:ESC-000042",
    "AppendMessage": f"conversation_id:{CONVERSATION}",
    "UpsertProduct": "code:SAV-EASY",
    "UpsertFaq": f"message_id:{MID}",  # a new FAQ has no id yet
}


def test_the_key_table_covers_every_command() -> None:
    assert set(EXPECTED_KEYS) == {type_name(command) for command in COMMAND_CLASSES}


@pytest.mark.parametrize("message_type", sorted(EXPECTED_KEYS))
def test_every_command_example_has_its_contract_key(message_type: str) -> None:
    assert ordering_key(request(message_type)) == EXPECTED_KEYS[message_type]


@pytest.mark.parametrize("message_type", sorted(QUERY_TYPES))
def test_every_query_is_keyed_by_its_message_id(message_type: str) -> None:
    assert ordering_key(request(message_type)) == f"message_id:{MID}"


def test_a_query_with_a_key_field_is_still_keyed_by_its_message_id() -> None:
    query = request("GetCustomer", email=None, customer_id="CUST-000001")

    assert ordering_key(query) == f"message_id:{MID}"


@pytest.mark.parametrize("command", ["FreezeAccounts", "UnfreezeAccounts"])
def test_one_account_number_is_keyed_like_that_accounts_transactions(command: str) -> None:
    one = request(command, account_numbers=["40000001"])

    assert ordering_key(one) == ordering_key(request("RecordTransaction"))
    assert ordering_key(one) == "account_number:40000001"


def test_several_account_numbers_fall_back_to_the_message_id() -> None:
    many = request("FreezeAccounts", account_numbers=["40000001", "40000002", "40000003"])

    assert ordering_key(many) == f"message_id:{MID}"


def test_emails_are_lower_cased() -> None:
    shouted = request("CreateCustomer", email="ADA@Example.COM")

    assert ordering_key(shouted) == "email:ada@example.com"


def test_uuids_are_canonical_lower_case_with_hyphens() -> None:
    upper = request("AppendMessage", conversation_id=CONVERSATION.upper())
    bare = request("AppendMessage", conversation_id=uuid.UUID(CONVERSATION).hex)

    assert ordering_key(upper) == ordering_key(bare) == f"conversation_id:{CONVERSATION}"


def test_the_first_present_field_wins() -> None:
    started = request("StartConversation")
    without_id = request("StartConversation", conversation_id=None)
    by_conversation = request(
        "ResolveConversation", escalation_id=None, conversation_id=CONVERSATION
    )

    assert ordering_key(started) == f"conversation_id:{CONVERSATION}"
    assert ordering_key(without_id) == "customer_id:CUST-000001"
    assert ordering_key(by_conversation) == f"conversation_id:{CONVERSATION}"


def test_customer_id_outranks_a_new_email() -> None:
    update = request("UpdateCustomer", email="New@Example.com")

    assert ordering_key(update) == "customer_id:CUST-000001"


def test_an_upsert_of_an_existing_faq_is_keyed_by_its_id() -> None:
    assert ordering_key(request("UpsertFaq", faq_id="FAQ-000007")) == "faq_id:FAQ-000007"


def test_the_key_is_driven_by_the_class_declaration_not_by_field_names() -> None:
    class Unordered(RecordTransaction):
        events = RecordTransaction.events
        ordering_fields = ()
        rejections = RecordTransaction.rejections
        example = RecordTransaction.example

    message = Unordered.model_validate_json(json.dumps(example_message("RecordTransaction")))

    assert ordering_key(message) == f"message_id:{MID}"
