"""Customer rules: unique emails, business ids, soft delete."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError

from worker.db.models import Customer
from worker.errors import CustomerNotFound, EmailTaken
from worker.repositories import CustomerRepository
from worker.services.base import BaseService, violates

UPDATABLE = ("email", "full_name", "phone", "is_vip")


def normalise_email(email: str) -> str:
    """Emails are stored and compared lower-case and trimmed."""
    return email.strip().lower()


async def require_customer(customers: CustomerRepository, customer_id: str) -> Customer:
    """The live customer with this business id, or ``CustomerNotFound``."""
    customer = await customers.find_by_business_id(customer_id)
    if customer is None:
        raise CustomerNotFound(f"no customer {customer_id}")
    return customer


class CustomerService(BaseService):
    """Creating, changing, deleting and finding customers."""

    async def create_customer(
        self, *, email: str, full_name: str, phone: str | None = None, is_vip: bool = False
    ) -> Customer:
        """Create a customer with a fresh ``CUST-…`` id; the email must be free."""
        email = normalise_email(email)
        if await self.customers.email_in_use(email):
            raise EmailTaken("a customer with this email already exists")
        data = {"email": email, "full_name": full_name, "phone": phone, "is_vip": is_vip}
        data["customer_id"] = await self.customers.next_business_id()
        try:
            return await self.customers.create(data)
        except IntegrityError as exc:  # a concurrent create won the race for the email
            if violates(exc, "uq_customers_email", "customers.email"):
                raise EmailTaken("a customer with this email already exists") from exc
            raise

    async def update_customer(
        self, customer_id: str, changes: dict[str, Any]
    ) -> tuple[Customer, dict[str, Any]]:
        """Apply ``changes``; returns the customer and the fields whose value changed."""
        customer = await require_customer(self.customers, customer_id)
        wanted = {k: v for k, v in changes.items() if k in UPDATABLE}
        if "email" in wanted:
            wanted["email"] = normalise_email(wanted["email"])
        changed = {k: v for k, v in wanted.items() if getattr(customer, k) != v}
        if "email" in changed and await self.customers.email_in_use(changed["email"]):
            raise EmailTaken("a customer with this email already exists")
        if not changed:
            return customer, {}
        try:
            updated = await self.customers.update(customer.id, changed)
        except IntegrityError as exc:
            if violates(exc, "uq_customers_email", "customers.email"):
                raise EmailTaken("a customer with this email already exists") from exc
            raise
        assert updated is not None  # the row is visible in this transaction
        return updated, changed

    async def delete_customer(self, customer_id: str) -> Customer:
        """Soft-delete the customer: the row stays, finders stop returning it."""
        customer = await require_customer(self.customers, customer_id)
        await self.customers.delete(customer.id)
        return customer

    async def get_customer(
        self, *, customer_id: str | None = None, email: str | None = None
    ) -> Customer:
        """Look a customer up by business id or email."""
        if customer_id is not None:
            return await require_customer(self.customers, customer_id)
        found = await self.customers.find_by_email(email or "")
        if found is None:
            raise CustomerNotFound("no customer with this email")
        return found
