"""Products and FAQs: the reference data the chat agent quotes."""

from __future__ import annotations

from sqlalchemy import or_, select

from worker.db.models import FAQ, Product
from worker.repositories.base import BaseRepository, clamp_limit
from worker.repositories.sequences import next_number


class ProductRepository(BaseRepository[Product]):
    """The product catalogue."""

    model = Product

    async def find_by_code(self, code: str) -> Product | None:
        """The product with this code."""
        return await self._one(select(Product).where(Product.code == code))

    async def list_by_category(self, category: str, *, limit: int = 100) -> list[Product]:
        """Products in a category, by code."""
        stmt = select(Product).where(Product.category == category).order_by(Product.code)
        return await self._all(stmt.limit(clamp_limit(limit)))

    async def list_active(self, *, limit: int = 100) -> list[Product]:
        """Active products, by code."""
        stmt = select(Product).where(Product.is_active.is_(True)).order_by(Product.code)
        return await self._all(stmt.limit(clamp_limit(limit)))


def escape_like(term: str, escape: str = "\\") -> str:
    """Escape LIKE wildcards so ``%`` and ``_`` in a search term match literally."""
    return term.replace(escape, escape * 2).replace("%", escape + "%").replace("_", escape + "_")


class FAQRepository(BaseRepository[FAQ]):
    """Frequently asked questions."""

    model = FAQ

    async def find_by_faq_id(self, faq_id: str) -> FAQ | None:
        """The FAQ with this ``FAQ-…`` id."""
        return await self._one(select(FAQ).where(FAQ.faq_id == faq_id))

    async def search_by_keyword(self, keyword: str, *, limit: int = 10) -> list[FAQ]:
        """FAQs whose question or keywords contain ``keyword``, case-insensitively."""
        pattern = f"%{escape_like(keyword.strip())}%"
        stmt = select(FAQ).where(
            or_(FAQ.question.ilike(pattern, escape="\\"), FAQ.keywords.ilike(pattern, escape="\\"))
        )
        return await self._all(stmt.order_by(FAQ.id).limit(clamp_limit(limit)))

    async def next_faq_id(self) -> str:
        """A fresh ``FAQ-000001``-style id."""
        return f"FAQ-{await next_number(self.session, 'faq'):06d}"
