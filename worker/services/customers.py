"""Customer rules: unique emails, business ids, soft delete, erasure."""

from __future__ import annotations

from collections.abc import Mapping

from contracts import CustomerView
from worker.db.models import Customer
from worker.errors import CustomerNotFound, EmailTaken
from worker.repositories import CustomerRepository
from worker.services.base import BaseService

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
        """Create a customer with a fresh ``CUST-…`` id; the email must be free.

        One statement creates the customer if the email is free; only when it creates
        nothing does the step-by-step path below find out why and reject (or create, if the
        email was freed since, by an erasure).
        """
        email = normalise_email(email)
        created = await self.customers.create_if_email_free(
            email=email, full_name=full_name, phone=phone, is_vip=is_vip
        )
        if created is not None:
            return created
        if await self.customers.email_in_use(email):
            raise EmailTaken("a customer with this email already exists")
        # A concurrent create can still win the race for the email: the repository raises
        # EmailTaken for the unique violation.
        return await self.customers.create(
            customer_id=await self.customers.next_business_id(),
            email=email,
            full_name=full_name,
            phone=phone,
            is_vip=is_vip,
        )

    async def update_customer(
        self, customer_id: str, changes: Mapping[str, object]
    ) -> tuple[Customer, dict[str, object]]:
        """Apply ``changes``; returns the customer and the fields whose value changed."""
        customer = await require_customer(self.customers, customer_id)
        wanted = {k: v for k, v in changes.items() if k in UPDATABLE}
        if isinstance(wanted.get("email"), str):
            wanted["email"] = normalise_email(str(wanted["email"]))
        changed = {k: v for k, v in wanted.items() if getattr(customer, k) != v}
        if "email" in changed and await self.customers.email_in_use(str(changed["email"])):
            raise EmailTaken("a customer with this email already exists")
        if not changed:
            return customer, {}
        updated = await self.customers.update(customer.id, **changed)
        assert updated is not None  # the row is visible in this transaction
        return updated, changed

    async def delete_customer(self, customer_id: str) -> Customer:
        """Soft-delete the customer: the row stays, finders stop returning it."""
        customer = await require_customer(self.customers, customer_id)
        await self.customers.delete(customer.id)
        return customer

    async def erase_customer(self, *, customer_id: str, legal_basis: str) -> Customer:
        """Erase the customer's personal data for good (GDPR Art. 17); idempotent.

        The customer row (its email freed, name and phone gone), the free text of its
        conversations (closed) and messages, and the personal fields of stored events are
        replaced; accounts and transactions stay under the pseudonymous ``customer_id``.
        A deleted customer can be erased; an erased one again is a success with no change.
        """
        customer = await self.customers.find_any_by_business_id(customer_id)
        if customer is None:
            raise CustomerNotFound(f"no customer {customer_id}")
        if customer.erased_at is not None:
            return customer
        await self.customers.erase(customer.id, legal_basis=legal_basis)
        conversation_ids = await self.conversations.erase_for_customer(customer.id)
        await self.messages.erase_for_customer(customer.id)
        await self.stored_events.scrub_customer(customer_id, conversation_ids)
        return customer

    async def get_customer(
        self, *, customer_id: str | None = None, email: str | None = None
    ) -> CustomerView:
        """Look a customer up by business id or email."""
        if customer_id is not None:
            return customer_view(await require_customer(self.customers, customer_id))
        found = await self.customers.find_by_email(email or "")
        if found is None:
            raise CustomerNotFound("no customer with this email")
        return customer_view(found)


def customer_view(c: Customer) -> CustomerView:
    """The read model of a live customer (erased ones are deleted: finders skip them)."""
    assert c.email is not None, "only an erased customer has no email"
    return CustomerView(
        customer_id=c.customer_id,
        email=c.email,
        full_name=c.full_name,
        phone=c.phone,
        is_vip=c.is_vip,
        created_at=c.created_at,
    )
