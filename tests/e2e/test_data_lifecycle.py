"""The data lifecycle against a running worker: erasure, the audit, retention.

* ``EraseCustomer`` over AMQP: the event carries the actor, the customer is gone for queries,
  none of its personal values is left in any table (each row cast to text in PostgreSQL),
  its accounts and transactions are, and the email registers again.
* The audit: a command's actor and outcome are in ``command_audit``; a freeze's reason is in
  the account's history and in its event.
* Retention in a worker of its own (a private database): old inbox ids and published events
  disappear on the job's schedule, and an id still inside the window stays a duplicate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from testkit.config import WorkerEnv
from testkit.factories import new_id, unique_email, unique_token, wait_until
from testkit.harness import Harness, harness_for
from testkit.processes import WorkerPool

pytestmark = pytest.mark.e2e

ACTOR = "agent:dpo-7"


def tables_holding(h: Harness, value: str) -> list[str]:
    """Every table of the worker's database with a row whose text contains ``value``."""
    tables = h.fetch(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
    )
    found = []
    for (name,) in (tuple(t.values()) for t in tables):
        sql = f'SELECT count(*) FROM "{name}" t WHERE strpos(lower(t::text), lower($1)) > 0'
        if h.fetchval(sql, value):
            found.append(name)
    return found


def test_erase_customer_removes_every_personal_value_and_keeps_the_money(
    harness: Harness,
) -> None:
    h, tag = harness, unique_token()
    email, name, phone = unique_email(), f"Erin {tag}", "+44 7700 900123"
    customer_id = h.create_customer(email=email, full_name=name)["customer_id"]
    h.expect_event(
        "UpdateCustomer",
        {"customer_id": customer_id, "phone": phone},
        event_type="CustomerUpdated",
    )
    account = h.open_account(customer_id)
    h.expect_event(
        "RecordTransaction",
        {
            "account_number": account,
            "amount": "25.00",
            "direction": "credit",
            "description": "salary",
            "reference": f"REF-{tag}",
        },
        event_type="TransactionRecorded",
    )
    conversation = h.start_conversation(customer_id, subject=f"About {tag}")
    content = f"my secret is {tag}"
    h.expect_event(
        "AppendMessage",
        {"conversation_id": conversation, "role": "customer", "content": content},
        event_type="MessageAppended",
    )
    personal = [email, name, phone, content, f"About {tag}"]
    assert all(tables_holding(h, value) for value in personal)

    erased = h.expect_event(
        "EraseCustomer",
        {"customer_id": customer_id, "legal_basis": "gdpr_art17"},
        event_type="CustomerErased",
        routing_key="customer.erased",
        envelope={"actor": ACTOR},
    )

    assert erased.payload == {"customer_id": customer_id}
    assert erased.json["actor"] == ACTOR
    assert {value: tables_holding(h, value) for value in personal} == {v: [] for v in personal}
    balance = h.fetchval("SELECT balance FROM accounts WHERE account_number = $1", account)
    assert str(balance) == "25.00"
    assert h.fetchval("SELECT count(*) FROM transactions WHERE reference = $1", f"REF-{tag}") == 1
    answer = h.query("GetCustomer", {"customer_id": customer_id})
    assert answer.payload["reason"] == "customer_not_found"
    assert h.create_customer(email=email)["customer_id"] != customer_id


def test_the_audit_records_the_actor_and_a_freeze_keeps_its_reason(harness: Harness) -> None:
    h = harness
    account = h.open_account(h.create_customer()["customer_id"])
    reason = f"Suspected fraud {unique_token()}"

    sent, frozen = h.execute(
        "FreezeAccounts",
        {"account_numbers": [account], "reason": reason},
        envelope={"actor": ACTOR},
    )

    assert frozen.type == "AccountsFrozen"
    assert (frozen.payload["reason"], frozen.json["actor"]) == (reason, ACTOR)
    audit = h.fetch(
        "SELECT message_type, actor, outcome FROM command_audit WHERE message_id = $1",
        sent.message_id,
    )
    assert audit == [{"message_type": "FreezeAccounts", "actor": ACTOR, "outcome": "applied"}]
    history = h.fetch(
        "SELECT h.status, h.reason, h.actor, h.message_id FROM account_status_changes h "
        "JOIN accounts a ON a.id = h.account_id WHERE a.account_number = $1",
        account,
    )
    assert history == [
        {"status": "frozen", "reason": reason, "actor": ACTOR, "message_id": sent.message_id}
    ]


def test_a_running_worker_prunes_on_schedule_and_keeps_the_duplicate_window(
    isolated_worker_env: Callable[..., WorkerEnv], workers: WorkerPool
) -> None:
    env = isolated_worker_env(
        WORKER_RETENTION_INTERVAL="1",
        WORKER_OUTBOX_RETENTION_HOURS="0.0005",  # 1.8 s
    )
    worker = workers.start(env)
    with harness_for(env, worker) as h:
        old, recent = new_id(), new_id()
        for message_id in (old, recent):
            h.expect_event(
                "CreateCustomer",
                {"email": unique_email(), "full_name": "Pruned"},
                event_type="CustomerCreated",
                message_id=message_id,
            )
        h.fetch(
            "UPDATE inbox_messages SET processed_at = now() - make_interval(days => $2) "
            "WHERE message_id = $1",
            old,
            31,
        )
        h.fetch(
            "UPDATE inbox_messages SET processed_at = now() - make_interval(days => $2) "
            "WHERE message_id = $1",
            recent,
            13,  # inside the DLQ replay window (14 days by default)
        )

        def state() -> dict[str, Any]:
            ids = {r["message_id"] for r in h.fetch("SELECT message_id FROM inbox_messages")}
            events = h.fetchval("SELECT count(*) FROM outbox_events")
            return {"old": old in ids, "recent": recent in ids, "events": events}

        wait_until(lambda: state() == {"old": False, "recent": True, "events": 0}, timeout=30)
        assert worker.find_logs("retention.pruned")

        again = h.send(
            "CreateCustomer",
            {"email": unique_email(), "full_name": "Replayed"},
            message_id=recent,
        )
        handled = worker.wait_for_log(
            "message.handled", message_id=again.message_id, outcome="duplicate"
        )
        assert handled["action"] == "ack"
