"""Handlers: one per contract message, each turning its service's answer into its events.

The services are ``MagicMock(spec=…)`` (a handler's logic alone is under test); the bus
and the real services are tested elsewhere.
"""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any
from unittest.mock import AsyncMock, MagicMock

import pytest

from contracts import COMMAND_TYPES, MESSAGE_CLASSES, QUERY_TYPES, example_message
from worker.db.models import Account, Customer, Message, Transaction
from worker.handlers import HANDLERS, accounts, conversations, customers
from worker.services import AccountService, ConversationService, CustomerService
from worker.services.accounts import Provenance

pytestmark = pytest.mark.unit


def message(message_type: str, **payload: Any) -> Any:
    body = example_message(message_type)
    body["message_id"] = str(uuid.uuid4())
    body["payload"].update(payload)
    return MESSAGE_CLASSES[message_type].model_validate_json(json.dumps(body))


def mock(service: type[Any]) -> Any:
    return MagicMock(spec=service)


def test_every_command_and_query_has_exactly_one_handler() -> None:
    assert set(HANDLERS.commands) == set(COMMAND_TYPES)
    assert set(HANDLERS.queries) == set(QUERY_TYPES)


def test_a_second_handler_for_a_type_is_refused() -> None:
    with pytest.raises(ValueError, match="already has a handler"):
        HANDLERS.command(MESSAGE_CLASSES["CreateCustomer"], CustomerService)(  # type: ignore[arg-type]
            customers.create_customer
        )


async def test_create_customer_reports_what_the_service_stored() -> None:
    service = mock(CustomerService)
    service.create_customer = AsyncMock(
        return_value=Customer(
            customer_id="CUST-000042", email="ada@example.com", full_name="Ada", is_vip=True
        )
    )
    command = message("CreateCustomer", email="Ada@Example.com", full_name="Ada", is_vip=True)

    [event] = await customers.create_customer(command, service)

    service.create_customer.assert_awaited_once_with(
        email="Ada@Example.com", full_name="Ada", phone=None, is_vip=True
    )
    assert event.type == "CustomerCreated"
    assert event.payload.customer_id == "CUST-000042"
    assert event.payload.email == "ada@example.com"
    assert event.causation_id == command.message_id
    assert event.correlation_id == command.correlation_id


async def test_update_customer_passes_only_the_fields_the_command_gave() -> None:
    service = mock(CustomerService)
    service.update_customer = AsyncMock(return_value=(Customer(), {"phone": None}))
    command = message("UpdateCustomer", phone=None)

    [event] = await customers.update_customer(command, service)

    service.update_customer.assert_awaited_once_with(command.payload.customer_id, {"phone": None})
    assert event.payload.changes.model_dump() == {"phone": None}


@pytest.mark.parametrize(
    ("message_type", "method", "event_type"),
    [
        ("FreezeAccounts", "freeze_accounts", "AccountsFrozen"),
        ("UnfreezeAccounts", "unfreeze_accounts", "AccountsUnfrozen"),
    ],
)
async def test_account_status_changes_report_only_the_accounts_that_changed(
    message_type: str, method: str, event_type: str
) -> None:
    service = mock(AccountService)
    setattr(service, method, AsyncMock(return_value=["40000001"]))
    command = message(message_type, account_numbers=["40000001", "40000002"], reason="Fraud")
    command = command.model_copy(update={"actor": "agent:7"})

    [event] = await getattr(accounts, method)(command, service)

    getattr(service, method).assert_awaited_once_with(
        ("40000001", "40000002"),
        reason="Fraud",
        by=Provenance(actor="agent:7", message_id=command.message_id),
    )
    assert event.type == event_type
    assert event.payload.account_numbers == ("40000001",)
    assert (event.payload.reason, event.actor) == ("Fraud", "agent:7")


async def test_erase_customer_reports_the_erased_id_and_passes_the_legal_basis() -> None:
    service = mock(CustomerService)
    service.erase_customer = AsyncMock(return_value=Customer(customer_id="CUST-000042"))
    command = message("EraseCustomer", customer_id="CUST-000042", legal_basis="retention_expired")

    [event] = await customers.erase_customer(command, service)

    service.erase_customer.assert_awaited_once_with(
        customer_id="CUST-000042", legal_basis="retention_expired"
    )
    assert (event.type, event.routing_key) == ("CustomerErased", "customer.erased")
    assert event.payload.model_dump() == {"customer_id": "CUST-000042"}


async def test_record_transaction_reports_the_stored_amount_and_the_new_balance() -> None:
    service = mock(AccountService)
    stored = Transaction(amount=Decimal("12.50"), reference="POS-1", balance_after=Decimal("7.50"))
    service.record_transaction = AsyncMock(return_value=(stored, Account(account_number="4")))
    command = message("RecordTransaction", account_number="40000001", reference="POS-1")

    [event] = await accounts.record_transaction(command, service)

    assert event.payload.account_number == "4"
    assert event.payload.amount == Decimal("12.50")
    assert event.payload.balance_after == Decimal("7.50")


async def test_append_message_reports_the_sequence_the_service_assigned() -> None:
    service = mock(ConversationService)
    service.append_message = AsyncMock(return_value=Message(sequence=7))
    command = message("AppendMessage")

    [event] = await conversations.append_message(command, service)

    assert event.payload.sequence == 7
    assert event.payload.conversation_id == command.payload.conversation_id


async def test_a_query_handler_answers_with_the_services_items() -> None:
    service = mock(AccountService)
    service.customer_accounts = AsyncMock(return_value=["a view"])
    query = message("ListCustomerAccounts")

    answer = await accounts.list_customer_accounts(query, service)

    assert list(answer.items) == ["a view"]
    assert answer.next_cursor is None
