"""The reply-to rule: the worker answers reply queues only, so a sender cannot make it write
into the DLQ or another team's queue; an allowed reply queue gets the outcome."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from testkit.factories import unique_email, unique_token
from testkit.harness import Harness
from testkit.http import scrape
from testkit.private import free_port

pytestmark = pytest.mark.e2e

REFUSED = "fca_replies_refused_total"


@pytest.fixture(scope="module")
def worker_overrides() -> dict[str, str]:
    return {"WORKER_METRICS_PORT": str(free_port())}


@pytest.fixture
def metrics_port(harness: Harness) -> int:
    return int(harness.env.overrides["WORKER_METRICS_PORT"])


@pytest.fixture
def other_team_queue(harness: Harness) -> Iterator[str]:
    """A durable queue of another team's, which the worker must never write into."""
    name = f"billing.inbox.{unique_token()}"
    harness.client.channel.queue_declare(name, durable=True)
    yield name
    harness.client.channel.queue_delete(name)


def new_customer() -> dict[str, str]:
    return {"email": unique_email(), "full_name": "Reply Rule"}


def test_a_command_naming_another_teams_queue_is_applied_but_not_answered_there(
    harness: Harness, other_team_queue: str, metrics_port: int
) -> None:
    before = scrape(metrics_port).total(REFUSED)
    sent = harness.send("CreateCustomer", new_customer(), reply_to=other_team_queue)

    event = harness.outcome(sent)
    harness.flush()  # everything the command published has arrived

    assert event.type == "CustomerCreated"
    assert harness.client.queue_counts(other_team_queue)[0] == 0
    assert harness.worker.find_logs("message.reply_to_refused", message_id=sent.message_id)
    assert scrape(metrics_port).total(REFUSED) == before + 1


def test_a_command_naming_the_dlq_as_reply_to_plants_nothing_in_it(harness: Harness) -> None:
    dlq = harness.topology.dead_letter_queue
    sent = harness.send("CreateCustomer", new_customer(), reply_to=dlq)

    assert harness.outcome(sent).type == "CustomerCreated"
    harness.flush()

    planted = [
        m
        for m in harness.client.dead_letters(dlq, ack=False)
        if sent.message_id in (m.message_id, m.causation_id, m.properties.message_id)
    ]
    assert planted == []


def test_a_query_whose_reply_to_is_refused_is_dead_lettered_unanswered(
    harness: Harness, other_team_queue: str
) -> None:
    sent = harness.send("GetCustomer", {"customer_id": "CUST-000001"}, reply_to=other_team_queue)

    dead = harness.client.wait_dead_letter(lambda m: m.properties.message_id == sent.message_id)

    assert "reply_to" in str((dead.headers or {}).get("fca-error-message", ""))
    assert harness.client.queue_counts(other_team_queue)[0] == 0


def test_an_allowed_reply_queue_gets_the_outcome_with_its_correlation_id(
    harness: Harness,
) -> None:
    name = f"fca.reply.{unique_token()}"
    harness.client.channel.queue_declare(name, exclusive=True, auto_delete=True)
    correlation = f"chat-{unique_token()}"
    sent = harness.send("CreateCustomer", new_customer(), reply_to=name, correlation_id=correlation)

    event = harness.outcome(sent)
    harness.flush()
    (method, properties, body) = harness.client.channel.basic_get(name, auto_ack=True)

    assert method is not None, f"no reply on {name}"
    assert properties.correlation_id == correlation
    assert properties.message_id == event.message_id
    assert json.loads(body)["causation_id"] == sent.message_id
