"""``ProductRepository`` and ``FAQRepository`` finders, including the escaped keyword search."""

from __future__ import annotations

import re

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import faq_data, product_data
from worker.db.models import FAQ, Product
from worker.repositories import FAQRepository, ProductRepository

pytestmark = pytest.mark.integration


@pytest.fixture
async def products(session: AsyncSession) -> list[Product]:
    """Five products over two categories, one of them inactive, inserted out of code order."""
    repo = ProductRepository(session)
    rows = [
        product_data(code="SAV-C", category="savings"),
        product_data(code="SAV-A", category="savings"),
        product_data(code="LOAN-B", category="loans", interest_rate=None),
        product_data(code="SAV-B", category="savings", is_active=False),
        product_data(code="LOAN-A", category="loans"),
    ]
    return [await repo.create(**row) for row in rows]


async def test_find_by_code_returns_the_product(
    session: AsyncSession, products: list[Product]
) -> None:
    found = await ProductRepository(session).find_by_code("LOAN-B")

    assert found is products[2]
    assert found.interest_rate is None


async def test_find_by_code_returns_none_when_missing(
    session: AsyncSession, products: list[Product]
) -> None:
    assert await ProductRepository(session).find_by_code("sav-a") is None


async def test_list_by_category_orders_by_code_and_honours_the_limit(
    session: AsyncSession, products: list[Product]
) -> None:
    repo = ProductRepository(session)

    assert [p.code for p in await repo.list_by_category("savings")] == ["SAV-A", "SAV-B", "SAV-C"]
    assert [p.code for p in await repo.list_by_category("savings", limit=1)] == ["SAV-A"]
    assert await repo.list_by_category("mortgages") == []


async def test_list_active_skips_inactive_products(
    session: AsyncSession, products: list[Product]
) -> None:
    repo = ProductRepository(session)

    assert [p.code for p in await repo.list_active()] == ["LOAN-A", "LOAN-B", "SAV-A", "SAV-C"]
    assert [p.code for p in await repo.list_active(limit=2)] == ["LOAN-A", "LOAN-B"]


# --- FAQs --------------------------------------------------------------------------------


@pytest.fixture
async def faqs(session: AsyncSession) -> list[FAQ]:
    """FAQs whose questions and keywords exercise case and LIKE wildcards."""
    repo = FAQRepository(session)
    rows = [
        faq_data(question="How do I reset my PIN?", keywords="pin\ncard"),
        faq_data(question="What is the overdraft fee?", keywords="fees\noverdraft"),
        faq_data(question="Is there a 100% cashback offer?", keywords="offers"),
        faq_data(question="How do I close an account?", keywords="account_closure\nleave"),
        faq_data(question="Where is my card?", keywords="delivery\npin_mailer"),
        faq_data(question="Can I get 1000 cashback?", keywords="offers"),
    ]
    return [await repo.create(**row) for row in rows]


def _ids(found: list[FAQ]) -> list[int]:
    return [f.id for f in found]


async def test_search_by_keyword_matches_the_question_case_insensitively(
    session: AsyncSession, faqs: list[FAQ]
) -> None:
    found = await FAQRepository(session).search_by_keyword("OVERDRAFT FEE")

    assert _ids(found) == [faqs[1].id]


async def test_search_by_keyword_matches_the_keywords_case_insensitively(
    session: AsyncSession, faqs: list[FAQ]
) -> None:
    found = await FAQRepository(session).search_by_keyword(" Delivery ")

    assert _ids(found) == [faqs[4].id]


async def test_search_by_keyword_matches_question_or_keywords_in_id_order(
    session: AsyncSession, faqs: list[FAQ]
) -> None:
    found = await FAQRepository(session).search_by_keyword("pin")

    assert _ids(found) == [faqs[0].id, faqs[4].id]


async def test_search_by_keyword_treats_percent_literally(
    session: AsyncSession, faqs: list[FAQ]
) -> None:
    repo = FAQRepository(session)

    assert _ids(await repo.search_by_keyword("100%")) == [faqs[2].id]
    assert await repo.search_by_keyword("%") == [faqs[2]]


async def test_search_by_keyword_treats_underscore_literally(
    session: AsyncSession, faqs: list[FAQ]
) -> None:
    repo = FAQRepository(session)

    assert _ids(await repo.search_by_keyword("_")) == [faqs[3].id, faqs[4].id]
    assert _ids(await repo.search_by_keyword("account_")) == [faqs[3].id]
    assert await repo.search_by_keyword("pin_m") == [faqs[4]]
    assert await repo.search_by_keyword("a_c") == []


async def test_search_by_keyword_treats_backslash_literally(
    session: AsyncSession, faqs: list[FAQ]
) -> None:
    repo = FAQRepository(session)
    windows = await repo.create(**faq_data(question=r"Where is C:\Bank\app?", keywords=""))

    assert await repo.search_by_keyword("\\") == [windows]
    assert await repo.search_by_keyword(r"c:\bank") == [windows]


async def test_search_by_keyword_honours_the_limit(session: AsyncSession, faqs: list[FAQ]) -> None:
    repo = FAQRepository(session)

    assert _ids(await repo.search_by_keyword("?", limit=2)) == [faqs[0].id, faqs[1].id]
    assert len(await repo.search_by_keyword("?")) == 6


async def test_search_by_keyword_returns_nothing_when_nothing_matches(
    session: AsyncSession, faqs: list[FAQ]
) -> None:
    assert await FAQRepository(session).search_by_keyword("mortgage") == []


async def test_find_by_faq_id_returns_the_faq_or_none(
    session: AsyncSession, faqs: list[FAQ]
) -> None:
    repo = FAQRepository(session)

    assert await repo.find_by_faq_id(faqs[2].faq_id) is faqs[2]
    assert await repo.find_by_faq_id("FAQ-404") is None


async def test_next_faq_id_is_unique_and_formatted(session: AsyncSession) -> None:
    repo = FAQRepository(session)

    ids = [await repo.next_faq_id() for _ in range(5)]

    assert len(set(ids)) == 5
    assert all(re.fullmatch(r"FAQ-\d{6}", i) for i in ids)
