"""``CustomerRepository`` finders, with soft-deleted customers invisible to all of them."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import BigInteger, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import customer_data, customer_fields, random_email
from worker.db.models import Customer
from worker.repositories import CustomerRepository
from worker.repositories.customers import business_id_sql

if TYPE_CHECKING:
    from tests.integration.conftest import Backend

pytestmark = pytest.mark.integration


async def test_find_by_email_ignores_case_and_surrounding_spaces(
    session: AsyncSession, customers: list[Customer]
) -> None:
    target = customers[4]

    found = await CustomerRepository(session).find_by_email(f"  {target.email.upper()} ")

    assert found is not None
    assert found.id == target.id


async def test_find_by_email_returns_none_for_an_unknown_email(
    session: AsyncSession, customers: list[Customer]
) -> None:
    assert await CustomerRepository(session).find_by_email("nobody@example.test") is None


async def test_find_by_business_id_returns_the_customer(
    session: AsyncSession, customers: list[Customer]
) -> None:
    found = await CustomerRepository(session).find_by_business_id(customers[2].customer_id)

    assert found is not None
    assert found.id == customers[2].id


async def test_find_by_business_id_returns_none_when_missing(
    session: AsyncSession, customers: list[Customer]
) -> None:
    assert await CustomerRepository(session).find_by_business_id("CUST-999999") is None


async def test_find_vip_customers_returns_only_vips_oldest_first(
    session: AsyncSession, customers: list[Customer]
) -> None:
    await CustomerRepository(session).create(**customer_data(is_vip=False))

    vips = await CustomerRepository(session).find_vip_customers()

    expected = [c.id for c in customers if c.is_vip]
    assert len(expected) >= 3
    assert [c.id for c in vips] == expected


async def test_find_vip_customers_honours_the_limit(
    session: AsyncSession, customers: list[Customer]
) -> None:
    vips = await CustomerRepository(session).find_vip_customers(limit=2)

    assert [c.id for c in vips] == [c.id for c in customers if c.is_vip][:2]


async def test_deleted_customers_are_invisible_to_every_finder(
    session: AsyncSession, customers: list[Customer]
) -> None:
    repo = CustomerRepository(session)
    vip = next(c for c in customers if c.is_vip)
    await repo.delete(vip.id)

    assert await repo.find_by_email(vip.email) is None
    assert await repo.find_by_business_id(vip.customer_id) is None
    assert vip.id not in [c.id for c in await repo.find_vip_customers()]


async def test_email_in_use_counts_deleted_customers_too(
    session: AsyncSession, customers: list[Customer]
) -> None:
    repo = CustomerRepository(session)
    await repo.delete(customers[0].id)

    assert await repo.email_in_use(customers[0].email.upper()) is True
    assert await repo.email_in_use(customers[1].email) is True
    assert await repo.email_in_use("free@example.test") is False


async def test_next_business_id_is_unique_and_formatted(session: AsyncSession) -> None:
    repo = CustomerRepository(session)

    ids = [await repo.next_business_id() for _ in range(25)]

    assert len(set(ids)) == 25
    assert all(re.fullmatch(r"CUST-\d{6}", i) for i in ids)


async def test_business_ids_maps_keys_to_business_ids_including_deleted_customers(
    session: AsyncSession, customers: list[Customer]
) -> None:
    repo = CustomerRepository(session)
    await repo.delete(customers[1].id)
    wanted = {customers[0].id, customers[1].id, 999_999}

    mapping = await repo.business_ids(wanted)

    assert mapping == {c.id: c.customer_id for c in customers[:2]}
    assert await repo.business_ids(set()) == {}


# --- the CreateCustomer hot path -------------------------------------------------------------


async def _count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Customer)) or 0)


async def test_create_if_email_free_returns_a_fully_populated_customer_held_by_the_session(
    session: AsyncSession,
) -> None:
    repo = CustomerRepository(session)
    email = random_email()

    created = await repo.create_if_email_free(
        email=f" {email.upper()} ", full_name="Ada Lovelace", phone=None, is_vip=True
    )

    assert created is not None
    assert re.fullmatch(r"CUST-\d{6}", created.customer_id)
    assert (created.email, created.full_name, created.phone, created.is_vip) == (
        email,
        "Ada Lovelace",
        None,
        True,
    )
    assert (created.is_deleted, created.erased_at, created.erasure_basis) == (False, None, None)
    assert isinstance(created.id, int)
    assert created.created_at.tzinfo is not None
    assert created.updated_at.tzinfo is not None
    assert await repo.find_by_business_id(created.customer_id) is created


async def test_create_if_email_free_takes_one_number_per_customer(session: AsyncSession) -> None:
    repo = CustomerRepository(session)

    created = [await repo.create_if_email_free(**customer_fields(is_vip=False)) for _ in range(3)]

    numbers = [int(c.customer_id.removeprefix("CUST-")) for c in created if c is not None]
    assert numbers == [numbers[0], numbers[0] + 1, numbers[0] + 2]


@pytest.mark.parametrize("deleted", [False, True], ids=["live", "deleted"])
async def test_create_if_email_free_writes_nothing_when_any_customer_holds_the_email(
    session: AsyncSession, customers: list[Customer], deleted: bool
) -> None:
    repo = CustomerRepository(session)
    holder = customers[3]
    if deleted:
        await repo.delete(holder.id)

    created = await repo.create_if_email_free(
        **customer_fields(email=holder.email.upper(), is_vip=False)
    )

    assert created is None
    assert await _count(session) == len(customers)


async def test_create_if_email_free_accepts_the_email_of_an_erased_customer(
    session: AsyncSession, customers: list[Customer]
) -> None:
    repo = CustomerRepository(session)
    email = customers[5].email
    await repo.erase(customers[5].id, legal_basis="gdpr_art17")

    created = await repo.create_if_email_free(**customer_fields(email=email, is_vip=False))

    assert created is not None
    assert created.email == email


@pytest.mark.parametrize("number", [1, 42, 999_999, 1_000_000, 12_345_678])
async def test_business_id_sql_formats_a_number_as_next_business_id_does(
    backend: Backend, session: AsyncSession, number: int
) -> None:
    if backend.name != "postgresql":
        pytest.skip("only PostgreSQL numbers customers in SQL")

    formatted = await session.scalar(select(business_id_sql(literal(number, BigInteger))))

    assert formatted == f"CUST-{number:06d}"
