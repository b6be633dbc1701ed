"""``CustomerService`` rules with its repositories mocked (no I/O)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from unittest.mock import MagicMock, call

import pytest
from sqlalchemy.exc import IntegrityError

from tests.factories import customer_data, customer_fields, random_email
from worker.db.models import Customer
from worker.errors import CustomerNotFound, EmailTaken
from worker.services import CustomerService

pytestmark = pytest.mark.unit

Build = Callable[[type[CustomerService]], Any]


def _integrity_error(message: str) -> IntegrityError:
    return IntegrityError("INSERT …", {}, Exception(message))


@pytest.fixture
def service(mocked: Build) -> Any:
    """A ``CustomerService`` with mocked repositories; no email is taken by default, and
    the one-statement create creates nothing, so ``create_customer`` takes the lookups."""
    service = mocked(CustomerService)
    service.customers.create_if_email_free.return_value = None
    service.customers.email_in_use.return_value = False
    service.customers.next_business_id.return_value = "CUST-000042"
    service.customers.create.side_effect = lambda **data: Customer(id=42, **data)
    return service


@pytest.fixture
def existing(service: Any) -> Customer:
    """A live customer the repository finds by business id."""
    customer = Customer(**customer_data(id=7, customer_id="CUST-000007", is_vip=False))
    service.customers.find_by_business_id.return_value = customer
    return customer


async def test_create_customer_takes_one_call_when_it_creates(service: Any) -> None:
    email = random_email()
    created = Customer(**customer_data(id=42, customer_id="CUST-000042", email=email))
    service.customers.create_if_email_free.return_value = created

    customer = await service.create_customer(
        email=f" {email.upper()} ", full_name="Ada", phone=None, is_vip=True
    )

    assert customer is created
    service.customers.create_if_email_free.assert_awaited_once_with(
        email=email, full_name="Ada", phone=None, is_vip=True
    )
    service.customers.email_in_use.assert_not_awaited()
    service.customers.create.assert_not_awaited()


async def test_create_customer_normalises_the_email_and_assigns_the_next_business_id(
    service: Any,
) -> None:
    email = random_email()

    customer = await service.create_customer(**customer_fields(email=f" {email.upper()} "))

    assert (customer.customer_id, customer.email) == ("CUST-000042", email)
    service.customers.email_in_use.assert_awaited_once_with(email)
    data = service.customers.create.call_args.kwargs
    assert data["email"] == email
    assert data["customer_id"] == "CUST-000042"


async def test_create_customer_rejects_a_taken_email_before_writing(service: Any) -> None:
    service.customers.email_in_use.return_value = True

    with pytest.raises(EmailTaken) as caught:
        await service.create_customer(**customer_fields())

    assert caught.value.reason == "email_taken"
    service.customers.create.assert_not_awaited()


async def test_update_customer_of_an_unknown_customer_is_not_found(service: Any) -> None:
    service.customers.find_by_business_id.return_value = None

    with pytest.raises(CustomerNotFound) as caught:
        await service.update_customer("CUST-404", {"full_name": "X"})

    assert caught.value.reason == "customer_not_found"


async def test_update_customer_to_a_taken_email_is_rejected(
    service: Any, existing: Customer
) -> None:
    service.customers.email_in_use.return_value = True

    with pytest.raises(EmailTaken):
        await service.update_customer(existing.customer_id, {"email": "Taken@Example.test"})

    service.customers.email_in_use.assert_awaited_once_with("taken@example.test")
    service.customers.update.assert_not_awaited()


async def test_update_customer_writes_only_changed_updatable_fields(
    service: Any, existing: Customer
) -> None:
    service.customers.update.return_value = existing

    _, changed = await service.update_customer(
        existing.customer_id,
        {"full_name": existing.full_name, "is_vip": True, "customer_id": "CUST-1", "x": 1},
    )

    assert changed == {"is_vip": True}
    service.customers.update.assert_awaited_once_with(existing.id, is_vip=True)


async def test_update_customer_without_changes_does_not_write(
    service: Any, existing: Customer
) -> None:
    _, changed = await service.update_customer(
        existing.customer_id, {"email": existing.email.upper()}
    )

    assert changed == {}
    service.customers.update.assert_not_awaited()
    service.customers.email_in_use.assert_not_awaited()


async def test_delete_customer_soft_deletes_through_the_repository(
    service: Any, existing: Customer
) -> None:
    assert await service.delete_customer(existing.customer_id) is existing

    service.customers.delete.assert_awaited_once_with(existing.id)


async def test_delete_customer_of_an_unknown_customer_is_not_found(service: Any) -> None:
    service.customers.find_by_business_id.return_value = None

    with pytest.raises(CustomerNotFound):
        await service.delete_customer("CUST-404")

    service.customers.delete.assert_not_awaited()


async def test_get_customer_by_an_unknown_email_is_not_found(service: Any) -> None:
    service.customers.find_by_email.return_value = None

    with pytest.raises(CustomerNotFound):
        await service.get_customer(email=random_email())


async def test_erase_customer_of_an_unknown_id_is_not_found(service: Any) -> None:
    service.customers.find_any_by_business_id.return_value = None

    with pytest.raises(CustomerNotFound):
        await service.erase_customer(customer_id="CUST-000404", legal_basis="gdpr_art17")

    service.customers.erase.assert_not_awaited()


async def test_erase_customer_finds_deleted_customers_and_erases_everything_in_order(
    service: Any,
) -> None:
    deleted = Customer(**customer_data(id=7, customer_id="CUST-000007"), is_deleted=True)
    service.customers.find_any_by_business_id.return_value = deleted
    conversation = uuid.uuid4()
    service.conversations.erase_for_customer.return_value = [conversation]
    calls = MagicMock()
    calls.attach_mock(service.customers.erase, "customer")
    calls.attach_mock(service.conversations.erase_for_customer, "conversations")
    calls.attach_mock(service.messages.erase_for_customer, "messages")
    calls.attach_mock(service.stored_events.scrub_customer, "events")

    erased = await service.erase_customer(customer_id="CUST-000007", legal_basis="gdpr_art17")

    assert erased is deleted
    # Conversations first: their row locks keep a concurrent append from slipping in.
    assert calls.mock_calls == [
        call.customer(7, legal_basis="gdpr_art17"),
        call.conversations(7),
        call.messages(7),
        call.events("CUST-000007", [conversation]),
    ]


async def test_erasing_an_erased_customer_again_changes_nothing(service: Any) -> None:
    erased = Customer(
        **customer_data(id=7, customer_id="CUST-000007", email=None), erased_at=datetime.now(UTC)
    )
    service.customers.find_any_by_business_id.return_value = erased

    assert (
        await service.erase_customer(customer_id="CUST-000007", legal_basis="gdpr_art17") is erased
    )

    service.customers.erase.assert_not_awaited()
    service.stored_events.scrub_customer.assert_not_awaited()
