"""InMemoryClient, the test double: messages and scripted answers are held to the contract."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contracts import (
    HEADER_ORDERING_KEY,
    CommandDeadLettered,
    CommandRejected,
    CreateCustomer,
    CustomerCreated,
    GetCustomer,
    InvalidMessage,
    ListCustomerConversations,
    OpenAccount,
    QueryResult,
    make_event,
)
from fca_client import (
    Client,
    InMemoryClient,
    NoAnswerScripted,
    RequestTimeout,
    ScriptError,
    build,
)
from testkit.factories import unique_email

pytestmark = pytest.mark.unit

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def create_customer(**envelope: str) -> CreateCustomer:
    return build(CreateCustomer, {"email": unique_email(), "full_name": "Ada"}, **envelope)


def customer_view(email: str) -> dict[str, object]:
    return {
        "customer_id": "CUST-000001",
        "email": email,
        "full_name": "Ada",
        "phone": None,
        "is_vip": False,
        "created_at": datetime(2026, 1, 1, tzinfo=UTC),
    }


async def register(client: Client, email: str) -> str | None:
    """What a chat agent might write against the protocol: the new id, or None if taken."""
    outcome = await client.request(
        build(CreateCustomer, {"email": email, "full_name": "Ada"}), timeout=5
    )
    if isinstance(outcome, CustomerCreated):
        return outcome.payload.customer_id
    assert isinstance(outcome, CommandRejected)
    return None


@pytest.fixture
def client() -> InMemoryClient:
    return InMemoryClient(actor="chat-agent")


async def test_send_records_the_command_as_the_worker_would_read_it(client: InMemoryClient) -> None:
    command = create_customer(correlation_id="chat-42")

    sent = await client.send(command, trace={"traceparent": TRACEPARENT})

    assert sent.actor == "chat-agent"
    [record] = client.sent
    assert record.message == sent
    assert record.routing_key == "CreateCustomer"
    assert record.headers == {
        HEADER_ORDERING_KEY: f"email:{command.payload.email}",
        "traceparent": TRACEPARENT,
    }
    assert not record.reply
    assert not record.duplicate
    assert client.sent_messages(CreateCustomer) == [sent]


async def test_an_invalid_message_is_refused_and_not_recorded(client: InMemoryClient) -> None:
    sneaky = CreateCustomer.model_construct(
        message_id="m-1", type="CreateCustomer", payload={"email": "x"}
    )

    with pytest.raises(InvalidMessage):
        await client.send(sneaky)
    assert client.sent == []


async def test_a_query_cannot_be_sent_without_asking_for_its_answer(client: InMemoryClient) -> None:
    with pytest.raises(TypeError, match="request"):
        await client.send(build(GetCustomer, {"email": unique_email()}))  # type: ignore[type-var]


async def test_a_scripted_event_answers_a_command_request(client: InMemoryClient) -> None:
    client.on(CreateCustomer).emit(
        lambda c: {"customer_id": "CUST-000001", **c.payload.model_dump(exclude={"phone"})}
    )

    assert await register(client, unique_email()) == "CUST-000001"

    [record] = client.sent
    assert record.reply


async def test_the_answer_carries_the_requests_envelope(client: InMemoryClient) -> None:
    client.on(CreateCustomer).reject("email_taken")
    command = create_customer(correlation_id="chat-42")

    outcome = await client.request(command)

    assert isinstance(outcome, CommandRejected)
    assert (outcome.causation_id, outcome.correlation_id, outcome.actor) == (
        command.message_id,
        "chat-42",
        "chat-agent",
    )
    assert outcome.payload.reason == "email_taken"
    assert await register(client, unique_email()) is None


async def test_a_scripted_result_answers_a_query(client: InMemoryClient) -> None:
    email = unique_email()
    client.on(GetCustomer).result(lambda q: [customer_view(q.payload.email or "")])
    client.on(ListCustomerConversations).result([], next_cursor=None)

    answer = await client.request(build(GetCustomer, {"email": email}))
    page = await client.request(build(ListCustomerConversations, {"customer_id": "CUST-1"}))

    assert isinstance(answer, QueryResult)
    assert [item.email for item in answer.payload.items] == [email]  # type: ignore[attr-defined]
    assert isinstance(page, QueryResult)
    assert page.payload.next_cursor is None  # type: ignore[attr-defined]


async def test_a_dead_letter_report_can_be_scripted(client: InMemoryClient) -> None:
    client.on(OpenAccount).dead_letter()

    outcome = await client.request(
        build(OpenAccount, {"customer_id": "CUST-1", "account_type": "current"})
    )

    assert isinstance(outcome, CommandDeadLettered)
    assert outcome.payload.error_type == "transient"


async def test_a_message_id_sent_before_gets_no_answer_like_with_the_worker(
    client: InMemoryClient,
) -> None:
    client.on(CreateCustomer).reject("email_taken")
    command = create_customer()
    await client.send(command)

    with pytest.raises(RequestTimeout):
        await client.request(command, timeout=3)

    assert [s.duplicate for s in client.sent] == [False, True]


async def test_no_answer_times_out_at_once(client: InMemoryClient) -> None:
    client.on(GetCustomer).no_answer()

    with pytest.raises(RequestTimeout, match="within 30s"):
        await client.request(build(GetCustomer, {"email": unique_email()}), timeout=30)


async def test_an_unscripted_request_says_what_to_script(client: InMemoryClient) -> None:
    with pytest.raises(NoAnswerScripted, match=r"client.on\(GetCustomer\)"):
        await client.request(build(GetCustomer, {"email": unique_email()}))


async def test_a_script_cannot_answer_what_the_worker_never_would(client: InMemoryClient) -> None:
    client.on(CreateCustomer).reject("customer_not_found")  # CreateCustomer never gets it
    with pytest.raises(ScriptError, match="never rejected with customer_not_found"):
        await client.request(create_customer())

    client.on(CreateCustomer).emit({"customer_id": "CUST-1"})  # the event lacks fields
    with pytest.raises(ScriptError, match="CustomerCreated"):
        await client.request(create_customer())

    client.on(CreateCustomer).answer(
        lambda c: make_event(
            CustomerCreated,
            command_message_id="someone-else",
            correlation_id=c.correlation_id,
            payload={
                "customer_id": "C-1",
                "email": c.payload.email,
                "full_name": "A",
                "is_vip": False,
            },
        )
    )
    with pytest.raises(ScriptError, match="causation_id"):
        await client.request(create_customer())


async def test_scripting_the_wrong_kind_of_answer_fails_early(client: InMemoryClient) -> None:
    with pytest.raises(TypeError, match="result"):
        client.on(GetCustomer).emit({})
    with pytest.raises(TypeError, match="emit"):
        client.on(CreateCustomer).result([])


async def test_clear_forgets_what_was_sent(client: InMemoryClient) -> None:
    async with client:
        await client.send(create_customer())
    client.clear()

    assert client.sent == []
