"""``CustomerRepository`` finders, with soft-deleted customers invisible to all of them."""

from __future__ import annotations

import re

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import customer_data
from worker.db.models import Customer
from worker.repositories import CustomerRepository

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
