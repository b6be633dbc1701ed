"""FcaClient against a running worker: the chat agent's side of the README example."""

from __future__ import annotations

import pytest

from contracts import (
    AccountOpened,
    CommandDeadLettered,
    CommandRejected,
    CreateCustomer,
    CustomerCreated,
    GetCustomer,
    OpenAccount,
    QueryResult,
)
from fca_client import FcaClient, RequestTimeout, build
from testkit.factories import new_id, unique_email
from testkit.harness import Harness

pytestmark = pytest.mark.e2e

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def client_for(harness: Harness, **options: str) -> FcaClient:
    """A client on the module worker's broker and commands exchange."""
    exchange = harness.topology.commands_exchange
    return FcaClient(harness.env.amqp_url, exchange=exchange, **options)


async def test_a_command_a_query_and_a_rejection_from_the_chat_agents_side(
    harness: Harness,
) -> None:
    email = unique_email()
    async with client_for(harness, actor="chat-agent") as client:
        created = await client.request(
            build(CreateCustomer, {"email": email, "full_name": "Ada"}, correlation_id="chat-1"),
            timeout=15,
        )
        found = await client.request(build(GetCustomer, {"email": email}), timeout=15)
        taken = await client.request(
            build(CreateCustomer, {"email": email, "full_name": "Ada"}), timeout=15
        )

    assert isinstance(created, CustomerCreated)
    assert (created.actor, created.correlation_id) == ("chat-agent", "chat-1")
    assert isinstance(found, QueryResult)
    [customer] = found.payload.items  # type: ignore[attr-defined]
    assert customer.customer_id == created.payload.customer_id
    assert isinstance(taken, CommandRejected)
    assert taken.payload.reason == "email_taken"


async def test_a_sent_command_is_applied_and_its_event_names_the_actor(harness: Harness) -> None:
    async with client_for(harness) as client:
        customer = await client.request(
            build(CreateCustomer, {"email": unique_email(), "full_name": "Ada"}), timeout=15
        )
        assert isinstance(customer, CustomerCreated)
        sent = await client.send(
            build(
                OpenAccount,
                {"customer_id": customer.payload.customer_id, "account_type": "current"},
                actor="agent:4711",
            ),
            trace={"traceparent": TRACEPARENT},
        )

    [event] = harness.events.wait_caused_by(sent.message_id)
    opened = event.parsed()
    assert isinstance(opened, AccountOpened)
    assert opened.actor == "agent:4711"


async def test_a_message_id_already_handled_gets_a_typed_timeout(harness: Harness) -> None:
    command = build(
        CreateCustomer, {"email": unique_email(), "full_name": "Ada"}, message_id=new_id()
    )
    async with client_for(harness) as client:
        assert isinstance(await client.request(command, timeout=15), CustomerCreated)

        with pytest.raises(RequestTimeout) as caught:
            await client.request(command, timeout=2)

    assert caught.value.message_id == command.message_id


async def test_an_invalid_raw_body_is_answered_with_its_dead_letter_report(
    harness: Harness,
) -> None:
    message_id = new_id()
    body = f'{{"message_id": "{message_id}", "type": "CreateCustomer", "payload": {{}}}}'

    async with client_for(harness) as client:
        report = await client.request_raw(
            body.encode(), routing_key="CreateCustomer", message_id=message_id, timeout=15
        )

    assert isinstance(report, CommandDeadLettered)
    assert report.payload.command_message_id == message_id
    assert report.payload.error_type == "invalid_message"
    harness.client.wait_dead_letter(lambda m: m.message_id == message_id)
