"""Customers: lookups by email and business id, VIPs, and business-id assignment."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from sqlalchemy import (
    ColumnElement,
    String,
    Table,
    and_,
    bindparam,
    func,
    literal_column,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql

from worker.db.models import Customer
from worker.repositories.base import BaseRepository, SoftDeleteMixin, clamp_limit
from worker.repositories.sequences import next_number, next_value

# Hot-path lookups are built once: constructing a statement and its cache key on every
# call costs more than executing it (measured: ~0.4 ms per lookup on this machine).
_LIVE = Customer.is_deleted.is_(False)
_BY_EMAIL = select(Customer).where(Customer.email == bindparam("email"), _LIVE).limit(1)
_EMAIL_IN_USE = select(func.count()).where(Customer.email == bindparam("email"))
_CUSTOMERS = cast(Table, Customer.__table__)


def live_customer(customer_id: ColumnElement[str]) -> ColumnElement[bool]:
    """The condition on ``customers`` that :meth:`CustomerRepository.find_by_business_id`
    applies (this business id, not deleted), for statements that write a row for a live
    customer only if there is one."""
    return and_(Customer.customer_id == customer_id, _LIVE)


_BY_BUSINESS_ID = select(Customer).where(live_customer(bindparam("customer_id"))).limit(1)


def business_id_sql(number: ColumnElement[int]) -> ColumnElement[str]:
    """``number`` as a business id in SQL, exactly as :meth:`CustomerRepository.next_business_id`
    formats it in Python (``CUST-`` and at least six digits): ``lpad`` alone would cut a
    seventh digit off, hence the width of at least the number's own length."""
    digits = number.cast(String)
    width = func.greatest(literal_column("6"), func.length(digits))
    return literal_column("'CUST-'", String) + func.lpad(digits, width, literal_column("'0'"))


# CreateCustomer's hot path on PostgreSQL, in Core, built once: one INSERT that takes its
# number from the sequence and inserts only if the email is free. The number comes from a
# derived table so nextval runs once although the formatting reads it twice (PostgreSQL
# never pulls a subquery with a volatile function up into the outer query).
#
# ``ON CONFLICT (email)`` names the unique constraint the email has (uq_customers_email, on
# the whole column: deleted customers keep theirs, erased ones hold NULL), which is what
# ``email_in_use`` counts. A concurrent create of the same email makes this statement wait
# for that transaction: if it commits, nothing is inserted (no row, no unique violation,
# and the number taken is a gap); if it rolls back, this row goes in.
_NUMBER = select(next_value("customer").label("n")).subquery("customer_number")
_GIVEN = ("email", "full_name", "phone", "is_vip")
_CREATE_IF_EMAIL_FREE = (
    postgresql.insert(_CUSTOMERS)
    .from_select(
        ["customer_id", *_GIVEN],
        select(
            business_id_sql(_NUMBER.c.n),
            *(bindparam(f"new_{name}", type_=_CUSTOMERS.c[name].type) for name in _GIVEN),
        ),
        include_defaults=False,  # the server defaults apply, as RETURNING reports them
    )
    .on_conflict_do_nothing(index_elements=["email"])
    .returning(*(c for c in _CUSTOMERS.c if c.key not in _GIVEN))
)

ERASED = "[erased]"
"""What replaces erased free text (names, message contents, subjects, reasons, resolutions)."""


class CustomerRepository(SoftDeleteMixin[Customer], BaseRepository[Customer]):
    """Customers; deleted ones are invisible to every finder."""

    model = Customer

    async def find_by_email(self, email: str) -> Customer | None:
        """The customer with this email, compared case-insensitively."""
        return await self.session.scalar(_BY_EMAIL, {"email": email.strip().lower()})

    async def find_by_business_id(self, customer_id: str) -> Customer | None:
        """The customer with this ``CUST-…`` id."""
        return await self.session.scalar(_BY_BUSINESS_ID, {"customer_id": customer_id})

    async def email_in_use(self, email: str) -> bool:
        """Whether any row, deleted or not, holds this email (it stays unique)."""
        return bool(await self.session.scalar(_EMAIL_IN_USE, {"email": email.strip().lower()}))

    async def create_if_email_free(
        self, *, email: str, full_name: str, phone: str | None, is_vip: bool
    ) -> Customer | None:
        """Create a customer with a fresh ``CUST-…`` id unless any customer, deleted or not,
        holds ``email`` (compared as :meth:`email_in_use` does); then write nothing and
        return ``None``.

        PostgreSQL: one ``INSERT … SELECT … ON CONFLICT (email) DO NOTHING RETURNING``, the
        id from ``nextval`` inside it, the row returned held by the session. SQLite has no
        sequences but serialises writers: :meth:`email_in_use`, :meth:`next_business_id`
        and :meth:`create`, one after the other.
        """
        email = email.strip().lower()
        if self.session.get_bind().dialect.name != "postgresql":
            if await self.email_in_use(email):
                return None
            return await self.create(
                customer_id=await self.next_business_id(),
                email=email,
                full_name=full_name,
                phone=phone,
                is_vip=is_vip,
            )
        given = {"email": email, "full_name": full_name, "phone": phone, "is_vip": is_vip}
        params = {f"new_{name}": value for name, value in given.items()}
        row = (await self.session.execute(_CREATE_IF_EMAIL_FREE, params)).first()
        if row is None:
            return None
        return self._adopt({**given, **row._mapping})

    async def find_any_by_business_id(self, customer_id: str) -> Customer | None:
        """The customer with this ``CUST-…`` id, deleted or erased ones included."""
        stmt = select(Customer).where(Customer.customer_id == customer_id)
        return await self.session.scalar(stmt.limit(1))

    async def erase(self, customer_pk: int, *, legal_basis: str) -> None:
        """Replace the customer's personal data for good: no email (free again), no phone,
        the name replaced; the row stays (soft-deleted) for the records tied to it."""
        stmt = (
            update(Customer)
            .where(Customer.id == customer_pk)
            .values(
                email=None,
                full_name=ERASED,
                phone=None,
                is_deleted=true(),
                erased_at=datetime.now(UTC),
                erasure_basis=legal_basis,
            )
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(stmt)

    async def business_ids(self, customer_pks: set[int]) -> dict[int, str]:
        """Map surrogate keys to business ids (deleted customers included), in one query."""
        if not customer_pks:
            return {}
        stmt = select(Customer.id, Customer.customer_id).where(Customer.id.in_(customer_pks))
        return dict((await self.session.execute(stmt)).all())

    async def find_vip_customers(self, *, limit: int = 50) -> list[Customer]:
        """VIP customers, oldest first."""
        stmt = self._visible(select(Customer)).where(Customer.is_vip.is_(True))
        return await self._all(stmt.order_by(Customer.id).limit(clamp_limit(limit)))

    async def next_business_id(self) -> str:
        """A fresh ``CUST-000001``-style id, unique under concurrent creators."""
        return f"CUST-{await next_number(self.session, 'customer'):06d}"
