"""One worker's world in one object: a client, a collector bound to its events, its database.

``Harness(env, worker=None)``
    ``.client`` (:class:`testkit.amqp.AmqpClient`), ``.events``
    (:class:`testkit.events.EventCollector`, bound at construction), ``.database_url``,
    ``.topology``, ``.worker``. ``.send(type, payload, **kw)``, ``.outcome(sent, timeout)``
    (the first message on the events exchange caused by ``sent``), ``.outcomes(sents,
    timeout) -> {message_id: first outcome}``, ``.execute(...)`` (send + outcome),
    ``.expect_event(type, payload, event_type=None, **kw)`` and
    ``.expect_rejection(type, payload, reason, **kw)`` (both run ``assert_outcome_message``),
    ``.query(type, payload, **kw)``, ``.wait_handled(sent)`` (the worker logged
    ``message.handled`` for it), ``.assert_no_more(predicate)`` (nothing matching arrived
    before a marker command's outcome; ``.flush()`` just waits for that marker),
    ``.assert_acked(sent)`` (that, no ``message.settle_failed``, and the command queue
    holds no ready message), ``.fetch/.fetchrow/.fetchval(sql, *args)``,
    ``.fingerprint()``, and data builders ``.create_customer(**fields) -> payload``,
    ``.open_account(customer_id, **fields) -> account_number``,
    ``.start_conversation(customer_id, **fields) -> conversation_id``. ``.close()`` raises
    :class:`testkit.events.EventCollectorError` if its collector stopped on its own.
``harness_for(env, worker=None)``
    A context manager yielding a ``Harness`` (closed on exit); build it before starting a
    worker to be sure its collector misses nothing.
``isolated_env(base, **overrides)``
    A context manager yielding a :class:`testkit.config.WorkerEnv` with a fresh database and
    fresh topology names, both removed on exit, for module-scoped worlds (the
    ``isolated_worker_env`` fixture is per test). Stop the workers using it before it exits.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from testkit.amqp import AmqpClient
from testkit.config import Topology, WorkerEnv
from testkit.database import DOMAIN_TABLES, db_fetch, db_fetchrow, db_fetchval, table_fingerprints
from testkit.events import EventCollector
from testkit.factories import DEFAULT_TIMEOUT, unique_email, wait_until
from testkit.messages import ReceivedMessage, SentMessage, assert_outcome_message
from testkit.processes import WorkerProcess
from testkit.sandbox import create_database, drop_database

__all__ = ["Harness", "harness_for", "isolated_env"]


class Harness:
    """One worker's world: a client, a collector bound to its events, and its database."""

    def __init__(self, env: WorkerEnv, worker: WorkerProcess | None = None) -> None:
        self.env = env
        self.worker = worker
        self.topology = env.topology
        self.database_url = env.database_url
        self.events = EventCollector(env.amqp_url, exchange=env.topology.events_exchange)
        self.client = AmqpClient(env.amqp_url, env.topology)

    def close(self) -> None:
        """Close the client and the collector."""
        self.client.close()
        self.events.close()

    def __enter__(self) -> Harness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # messaging

    def send(
        self, type: str, payload: Mapping[str, Any] | None = None, **publish: Any
    ) -> SentMessage:
        """Publish a command (see :meth:`AmqpClient.publish_command`)."""
        return self.client.publish_command(type, payload, **publish)

    def outcome(self, sent: SentMessage, *, timeout: float = DEFAULT_TIMEOUT) -> ReceivedMessage:
        """The first message on the events exchange caused by ``sent``."""
        return self.events.wait_caused_by(sent, timeout=timeout)[0]

    def outcomes(
        self, sent: Iterable[SentMessage], *, timeout: float = DEFAULT_TIMEOUT
    ) -> dict[str, ReceivedMessage]:
        """Wait for the first outcome of every one of ``sent``; by command message id."""
        wanted = {s.message_id for s in sent}
        found: dict[str, ReceivedMessage] = {}

        def complete() -> bool:
            for m in self.events.messages:
                if m.causation_id in wanted:
                    found.setdefault(m.causation_id, m)
            return len(found) == len(wanted)

        wait_until(
            complete,
            timeout=timeout,
            interval=0.1,
            message=lambda: f"{len(wanted) - len(found)} of {len(wanted)} have no outcome",
        )
        return found

    def execute(
        self, type: str, payload: Mapping[str, Any] | None = None, **publish: Any
    ) -> tuple[SentMessage, ReceivedMessage]:
        """Send a command and wait for its first outcome."""
        sent = self.send(type, payload, **publish)
        return sent, self.outcome(sent)

    def expect_event(
        self,
        type: str,
        payload: Mapping[str, Any] | None = None,
        *,
        event_type: str | None = None,
        routing_key: str | None = None,
        **publish: Any,
    ) -> ReceivedMessage:
        """Send a command whose outcome must be ``event_type``; return that event, checked."""
        sent, event = self.execute(type, payload, **publish)
        if event.type == "CommandRejected" and event_type != "CommandRejected":
            raise AssertionError(f"{type} was rejected: {event.payload}")
        if event_type is not None:
            assert_outcome_message(event, sent, event_type=event_type, routing_key=routing_key)
        return event

    def expect_rejection(
        self, type: str, payload: Mapping[str, Any] | None, reason: str, **publish: Any
    ) -> ReceivedMessage:
        """Send a command that must be rejected with ``reason``; return the rejection."""
        sent, event = self.execute(type, payload, **publish)
        assert_outcome_message(
            event, sent, event_type="CommandRejected", routing_key="command.rejected"
        )
        assert event.payload["reason"] == reason, event.payload
        assert event.payload["command_type"] == type, event.payload
        assert event.payload["command_message_id"] == sent.message_id, event.payload
        return event

    def query(
        self, type: str, payload: Mapping[str, Any] | None = None, **publish: Any
    ) -> ReceivedMessage:
        """Send a query with ``reply_to`` and return its answer (see ``AmqpClient.request``)."""
        return self.client.request(type, payload, **publish)

    def wait_handled(
        self, sent: SentMessage, *, timeout: float = DEFAULT_TIMEOUT
    ) -> dict[str, Any]:
        """Wait for the worker's ``message.handled`` log line (written after the ack)."""
        assert self.worker is not None, "this harness has no worker to read logs from"
        return self.worker.wait_for_log(
            "message.handled", timeout=timeout, message_id=sent.message_id
        )

    def flush(self, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Return once everything the worker published so far has arrived (see
        ``assert_no_more``): a marker command is sent and its outcome awaited."""
        marker = self.send("CreateCustomer", {"email": unique_email(), "full_name": "Marker"})
        self.outcome(marker, timeout=timeout)

    def assert_no_more(
        self, predicate: Callable[[ReceivedMessage], bool], *, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        """Fail if a message matching ``predicate`` arrived, checked after a marker's outcome.

        Call it once the worker has handled what is under test (e.g. ``wait_handled``): a
        marker command sent now is handled after it, and the worker publishes everything on
        one channel in order, so anything the earlier work published reaches the collector
        before the marker's outcome does. A condition, not a sleep.
        """
        self.flush(timeout=timeout)
        found = [m for m in self.events.messages if predicate(m)]
        assert not found, f"unexpected messages: {found}"

    def assert_acked(self, sent: SentMessage, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        """The worker settled ``sent`` (ack, or ack after a retry/DLQ republish) without a
        settle failure (which would nack it), and the partition queues hold nothing ready."""
        record = self.wait_handled(sent, timeout=timeout)
        assert record.get("action") in {"ack", "retry", "dead_letter"}, record
        assert self.worker is not None
        failed = self.worker.find_logs("message.settle_failed", message_id=sent.message_id)
        assert not failed, failed
        self.client.wait_inputs_empty(timeout=timeout)

    # database

    def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        """Rows of a query on the worker's database."""
        return db_fetch(self.database_url, sql, *args)

    def fetchrow(self, sql: str, *args: Any) -> dict[str, Any] | None:
        """The first row of a query on the worker's database."""
        return db_fetchrow(self.database_url, sql, *args)

    def fetchval(self, sql: str, *args: Any) -> Any:
        """The first value of a query on the worker's database."""
        return db_fetchval(self.database_url, sql, *args)

    def fingerprint(self, tables: Sequence[str] = DOMAIN_TABLES) -> dict[str, str]:
        """See :func:`table_fingerprints`."""
        return table_fingerprints(self.database_url, tables)

    # data builders (each waits for the success event)

    def create_customer(self, **fields: Any) -> dict[str, Any]:
        """Create a customer (fresh email unless given); the ``CustomerCreated`` payload."""
        payload = {"email": unique_email(), "full_name": "E2E Customer", **fields}
        return self.expect_event("CreateCustomer", payload, event_type="CustomerCreated").payload

    def open_account(self, customer_id: str, **fields: Any) -> str:
        """Open an account (``current`` unless given); its account number."""
        payload = {"customer_id": customer_id, "account_type": "current", **fields}
        event = self.expect_event("OpenAccount", payload, event_type="AccountOpened")
        return str(event.payload["account_number"])

    def start_conversation(self, customer_id: str, **fields: Any) -> str:
        """Start a conversation (``chat`` unless given); its conversation id."""
        payload = {"customer_id": customer_id, "channel": "chat", **fields}
        event = self.expect_event("StartConversation", payload, event_type="ConversationStarted")
        return str(event.payload["conversation_id"])


@contextlib.contextmanager
def harness_for(env: WorkerEnv, worker: WorkerProcess | None = None) -> Iterator[Harness]:
    """A :class:`Harness` closed on exit."""
    harness = Harness(env, worker)
    try:
        yield harness
    finally:
        harness.close()


@contextlib.contextmanager
def isolated_env(base: WorkerEnv, **overrides: str | int | float) -> Iterator[WorkerEnv]:
    """A worker environment with its own database and topology, removed on exit."""
    database_url = create_database(base.database_url, prefix="worker_e2e_")
    env = WorkerEnv(
        amqp_url=base.amqp_url, database_url=database_url, topology=Topology.unique()
    ).with_overrides(**overrides)
    try:
        yield env
    finally:
        with contextlib.suppress(Exception), AmqpClient(base.amqp_url) as client:
            client.delete_topology(env.topology, env.retry_delays)
        drop_database(database_url)
