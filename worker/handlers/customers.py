"""Customer commands."""

from __future__ import annotations

from contracts import (
    CreateCustomer,
    CustomerChanges,
    CustomerCreated,
    CustomerCreatedPayload,
    CustomerDeleted,
    CustomerDeletedPayload,
    CustomerErased,
    CustomerErasedPayload,
    CustomerUpdated,
    CustomerUpdatedPayload,
    DeleteCustomer,
    EraseCustomer,
    GetCustomer,
    RoutedEvent,
    UpdateCustomer,
)
from worker.handlers.registry import HANDLERS, Answer, emit
from worker.services import CustomerService


@HANDLERS.command(CreateCustomer, CustomerService)
async def create_customer(command: CreateCustomer, service: CustomerService) -> list[RoutedEvent]:
    """Register a customer."""
    p = command.payload
    customer = await service.create_customer(
        email=p.email, full_name=p.full_name, phone=p.phone, is_vip=p.is_vip
    )
    assert customer.email is not None  # only an erased customer has none
    payload = CustomerCreatedPayload(
        customer_id=customer.customer_id,
        email=customer.email,
        full_name=customer.full_name,
        is_vip=customer.is_vip,
    )
    return [emit(command, CustomerCreated, payload)]


@HANDLERS.command(UpdateCustomer, CustomerService)
async def update_customer(command: UpdateCustomer, service: CustomerService) -> list[RoutedEvent]:
    """Change a customer's details; only fields present in the payload are touched."""
    p = command.payload
    fields = p.model_fields_set - {"customer_id"}
    wanted = {name: getattr(p, name) for name in fields}
    _, changed = await service.update_customer(p.customer_id, wanted)
    changes = CustomerChanges.model_validate(changed)
    payload = CustomerUpdatedPayload(customer_id=p.customer_id, changes=changes)
    return [emit(command, CustomerUpdated, payload)]


@HANDLERS.command(DeleteCustomer, CustomerService)
async def delete_customer(command: DeleteCustomer, service: CustomerService) -> list[RoutedEvent]:
    """Soft-delete a customer."""
    await service.delete_customer(command.payload.customer_id)
    payload = CustomerDeletedPayload(customer_id=command.payload.customer_id)
    return [emit(command, CustomerDeleted, payload)]


@HANDLERS.command(EraseCustomer, CustomerService)
async def erase_customer(command: EraseCustomer, service: CustomerService) -> list[RoutedEvent]:
    """Erase a customer's personal data (GDPR Art. 17); financial records stay."""
    p = command.payload
    await service.erase_customer(customer_id=p.customer_id, legal_basis=p.legal_basis)
    return [emit(command, CustomerErased, CustomerErasedPayload(customer_id=p.customer_id))]


@HANDLERS.query(GetCustomer, CustomerService)
async def get_customer(query: GetCustomer, service: CustomerService) -> Answer:
    """One customer by business id or email."""
    p = query.payload
    return Answer([await service.get_customer(customer_id=p.customer_id, email=p.email)])
