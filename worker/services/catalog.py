"""Catalogue rules: products upserted by code, FAQs by id with normalised keywords."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from contracts import FaqView
from worker.db.models import FAQ, Product
from worker.errors import FaqNotFound
from worker.services.base import BaseService


def join_keywords(keywords: Sequence[str]) -> str:
    """Keywords stored lower-case, trimmed, de-duplicated, one per line."""
    seen: dict[str, None] = {}
    for keyword in keywords:
        cleaned = " ".join(keyword.split()).lower()
        if cleaned:
            seen.setdefault(cleaned)
    return "\n".join(seen)


def split_keywords(stored: str) -> list[str]:
    """The keyword list back from its stored form."""
    return [k for k in stored.split("\n") if k]


class CatalogService(BaseService):
    """Products and FAQs."""

    async def upsert_product(
        self,
        *,
        code: str,
        name: str,
        category: str,
        description: str,
        interest_rate: Decimal | None = None,
        is_active: bool = True,
    ) -> tuple[Product, bool]:
        """Create or replace the product with this code; returns it and whether it is new."""
        fields: dict[str, object] = {
            "name": name,
            "category": category,
            "description": description,
            "interest_rate": interest_rate,
            "is_active": is_active,
        }
        existing = await self.products.find_by_code(code)
        if existing is None:
            return await self.products.create(code=code, **fields), True
        updated = await self.products.update(existing.id, **fields)
        assert updated is not None
        return updated, False

    async def upsert_faq(
        self,
        *,
        question: str,
        answer: str,
        keywords: Sequence[str],
        category: str,
        faq_id: str | None = None,
    ) -> FAQ:
        """Create an FAQ (fresh ``FAQ-…`` id) or replace the one ``faq_id`` names."""
        fields: dict[str, object] = {
            "question": question,
            "answer": answer,
            "keywords": join_keywords(keywords),
            "category": category,
        }
        if faq_id is None:
            return await self.faqs.create(faq_id=await self.faqs.next_faq_id(), **fields)
        existing = await self.faqs.find_by_faq_id(faq_id)
        if existing is None:
            raise FaqNotFound(f"no FAQ {faq_id}")
        updated = await self.faqs.update(existing.id, **fields)
        assert updated is not None
        return updated

    async def search_faq(self, keyword: str, *, limit: int = 10) -> list[FaqView]:
        """FAQs matching the keyword in their question or keywords."""
        found = await self.faqs.search_by_keyword(keyword, limit=min(limit, 50))
        return [faq_view(f) for f in found]


def faq_view(f: FAQ) -> FaqView:
    """The read model of an FAQ."""
    return FaqView(
        faq_id=f.faq_id,
        question=f.question,
        answer=f.answer,
        keywords=tuple(split_keywords(f.keywords)),
        category=f.category,
    )
