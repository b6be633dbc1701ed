"""``CustomerService`` rules against a real database."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import func, select

from tests.factories import customer_fields, random_email
from worker.db.models import Customer
from worker.db.session import SessionFactory
from worker.errors import CustomerNotFound, EmailTaken
from worker.services import CustomerService

if TYPE_CHECKING:
    from tests.integration.conftest import Backend

pytestmark = pytest.mark.integration

MakeCustomer = Callable[..., Awaitable[Customer]]


async def test_create_customer_assigns_a_business_id_and_lower_cases_the_email(
    session_factory: SessionFactory,
) -> None:
    email = random_email()
    async with CustomerService(session_factory) as service:
        customer = await service.create_customer(
            **customer_fields(email=f"  {email.upper()} ", is_vip=True)
        )
        await service.commit()

    assert re.fullmatch(r"CUST-\d{6}", customer.customer_id)
    assert customer.email == email
    assert customer.is_vip is True
    assert customer.created_at is not None


async def test_create_customer_gives_every_customer_its_own_business_id(
    make_customer: MakeCustomer,
) -> None:
    ids = [(await make_customer()).customer_id for _ in range(5)]

    assert len(set(ids)) == 5


async def test_create_customer_takes_one_statement_on_postgresql(
    backend: Backend, session_factory: SessionFactory
) -> None:
    statements = backend.capture()

    async with CustomerService(session_factory) as service:
        customer = await service.create_customer(**customer_fields(is_vip=True))
        await service.commit()

    verbs = [s.split()[0].upper() for s in statements]
    if backend.name == "postgresql":  # the email check and the number inside the INSERT
        assert verbs == ["INSERT"]
    else:  # no sequences: check the email, count on, insert
        assert verbs == ["SELECT", "INSERT", "UPDATE", "INSERT"]
    assert re.fullmatch(r"CUST-\d{6}", customer.customer_id)
    async with CustomerService(session_factory) as service:
        stored = await service.get_customer(customer_id=customer.customer_id)
    assert (stored.email, stored.is_vip, stored.created_at) == (
        customer.email,
        True,
        customer.created_at,
    )


@pytest.mark.parametrize("deleted", [False, True], ids=["live", "deleted"])
async def test_create_customer_with_a_taken_email_is_rejected_by_the_lookup_after_the_insert(
    backend: Backend, session_factory: SessionFactory, make_customer: MakeCustomer, deleted: bool
) -> None:
    existing = await make_customer()
    if deleted:
        async with CustomerService(session_factory) as service:
            await service.delete_customer(existing.customer_id)
            await service.commit()
    statements = backend.capture()

    async with CustomerService(session_factory) as service:
        with pytest.raises(EmailTaken) as caught:
            await service.create_customer(**customer_fields(email=existing.email.upper()))

    assert (caught.value.reason, caught.value.detail) == (
        "email_taken",
        "a customer with this email already exists",
    )
    verbs = [s.split()[0].upper() for s in statements]
    if backend.name == "postgresql":  # the INSERT inserted nothing; the lookup says why
        assert verbs == ["INSERT", "SELECT"]
    else:
        assert verbs == ["SELECT", "SELECT"]
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(Customer)) == 1


async def test_create_customer_rejects_a_taken_email_in_any_case(
    session_factory: SessionFactory, make_customer: MakeCustomer
) -> None:
    existing = await make_customer()

    async with CustomerService(session_factory) as service:
        with pytest.raises(EmailTaken) as caught:
            await service.create_customer(**customer_fields(email=existing.email.upper()))

    assert caught.value.reason == "email_taken"


async def test_create_customer_rejects_the_email_of_a_deleted_customer(
    session_factory: SessionFactory, make_customer: MakeCustomer
) -> None:
    existing = await make_customer()
    async with CustomerService(session_factory) as service:
        await service.delete_customer(existing.customer_id)
        await service.commit()

    async with CustomerService(session_factory) as service:
        with pytest.raises(EmailTaken):
            await service.create_customer(**customer_fields(email=existing.email))


async def test_update_customer_applies_and_reports_only_real_changes(
    session_factory: SessionFactory, make_customer: MakeCustomer
) -> None:
    customer = await make_customer(full_name="Ada Lovelace", is_vip=False)
    new_email = random_email()

    async with CustomerService(session_factory) as service:
        updated, changed = await service.update_customer(
            customer.customer_id,
            {
                "full_name": "Ada Lovelace",
                "is_vip": True,
                "email": new_email.upper(),
                "customer_id": "CUST-HACKED",
            },
        )
        await service.commit()

    assert changed == {"is_vip": True, "email": new_email}
    assert (updated.customer_id, updated.email, updated.is_vip) == (
        customer.customer_id,
        new_email,
        True,
    )
    async with CustomerService(session_factory) as service:
        reloaded = await service.get_customer(customer_id=customer.customer_id)
        assert (reloaded.email, reloaded.is_vip) == (new_email, True)


async def test_update_customer_without_changes_changes_nothing(
    session_factory: SessionFactory, make_customer: MakeCustomer
) -> None:
    customer = await make_customer()

    async with CustomerService(session_factory) as service:
        same, changed = await service.update_customer(
            customer.customer_id, {"email": customer.email.upper(), "phone": customer.phone}
        )
        assert changed == {}
        assert same.id == customer.id


async def test_update_customer_rejects_another_customers_email(
    session_factory: SessionFactory, make_customer: MakeCustomer
) -> None:
    first, second = await make_customer(), await make_customer()

    async with CustomerService(session_factory) as service:
        with pytest.raises(EmailTaken):
            await service.update_customer(second.customer_id, {"email": first.email.title()})


@pytest.mark.parametrize("deleted", [False, True], ids=["missing", "deleted"])
async def test_update_customer_of_an_unknown_or_deleted_customer_is_not_found(
    session_factory: SessionFactory, make_customer: MakeCustomer, deleted: bool
) -> None:
    customer_id = "CUST-999999"
    if deleted:
        customer_id = (await make_customer()).customer_id
        async with CustomerService(session_factory) as service:
            await service.delete_customer(customer_id)
            await service.commit()

    async with CustomerService(session_factory) as service:
        with pytest.raises(CustomerNotFound):
            await service.update_customer(customer_id, {"full_name": "Nobody"})


async def test_delete_customer_is_soft_and_hides_the_customer(
    session_factory: SessionFactory, make_customer: MakeCustomer
) -> None:
    customer = await make_customer()

    async with CustomerService(session_factory) as service:
        deleted = await service.delete_customer(customer.customer_id)
        await service.commit()

    assert deleted.customer_id == customer.customer_id
    async with CustomerService(session_factory) as service:
        with pytest.raises(CustomerNotFound):
            await service.get_customer(customer_id=customer.customer_id)
        with pytest.raises(CustomerNotFound):
            await service.get_customer(email=customer.email)
        with pytest.raises(CustomerNotFound):
            await service.delete_customer(customer.customer_id)
    async with session_factory() as session:
        stmt = select(func.count()).where(Customer.id == customer.id, Customer.is_deleted)
        assert await session.scalar(stmt) == 1


async def test_delete_customer_of_an_unknown_customer_is_not_found(
    session_factory: SessionFactory,
) -> None:
    async with CustomerService(session_factory) as service:
        with pytest.raises(CustomerNotFound):
            await service.delete_customer("CUST-000000")


async def test_get_customer_finds_by_business_id_or_by_email_in_any_case(
    session_factory: SessionFactory, make_customer: MakeCustomer
) -> None:
    customer = await make_customer()

    async with CustomerService(session_factory) as service:
        by_id = await service.get_customer(customer_id=customer.customer_id)
        by_email = await service.get_customer(email=customer.email.upper())
        assert by_id.customer_id == by_email.customer_id == customer.customer_id
        assert by_id.email == customer.email
        with pytest.raises(CustomerNotFound):
            await service.get_customer(email=random_email())
        with pytest.raises(CustomerNotFound):
            await service.get_customer()
