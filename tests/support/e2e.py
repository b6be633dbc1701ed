"""End-to-end harness: the worker as a subprocess, driven over RabbitMQ with pika.

Nothing here imports the worker: the process is started the way the README says
(``worker db upgrade`` then ``worker run``), commands go in through a plain pika client,
and outcomes are observed on the broker and in the database. Only ``contracts`` (the public
schema package) is used, to validate what comes out. Everything is synchronous: write e2e
tests as plain ``def test_…`` functions.

API
===

Configuration
    ``Topology(commands_exchange, command_queue, events_exchange, dead_letter_queue)``
        RabbitMQ names (defaults = the contract's). ``Topology.unique(tag)`` gives fresh names;
        ``.env()`` the ``WORKER_*`` settings; ``.retry_queue(seconds)``; ``.queues()``.
    ``WorkerEnv(amqp_url, database_url, topology=Topology(), overrides={})``
        Everything a worker is started with. ``.environ()`` → the process environment
        (``WORKER_LOG_FORMAT=json``, ``WORKER_METRICS_PORT=0`` unless overridden);
        ``.with_overrides(WORKER_CONCURRENCY="4", …)`` → a copy with more settings.

Processes
    ``WorkerProcess(env, log_path, name=…)``
        ``.start(timeout=30, migrate=True, wait=True)`` runs ``worker db upgrade`` (unless
        ``migrate=False``) then ``worker run``, stdout+stderr appended to ``log_path``, and waits
        for a new JSON ``worker.started`` line (raises ``WorkerStartError`` with the log tail);
        calling ``.start()`` again after the process ended restarts it (same log file);
        ``.wait_started(timeout)``, ``.terminate(timeout=30) -> int`` (SIGTERM, wait, SIGKILL if it
        hangs), ``.kill() -> int`` (SIGKILL), ``.wait_exit(timeout) -> int``, ``.is_running``,
        ``.pid``, ``.returncode``, ``.logs() -> str``, ``.log_tail(lines)``,
        ``.log_records() -> list[dict]`` (parsed JSON lines), ``.find_logs(event, **fields)``,
        ``.wait_for_log(event, timeout=15, **fields) -> dict``, ``.count_log(event, **fields)``,
        ``.send_signal(signum)``, ``.migrate()``.
    ``WorkerPool(log_dir)``: ``.start(env, name=None, **start_kwargs) -> WorkerProcess``,
        ``.spawn(env, name=None)`` (not started), ``.stop_all(timeout)``, ``.kill_all()``.
        The fixtures own one pool each and always kill every process at teardown.

Broker
    ``AmqpClient(url, topology=Topology())`` (a pika ``BlockingConnection`` with publisher
    confirms; context manager; ``.close()``):
        ``.publish_command(type, payload, *, message_id=None, correlation_id=None,
        reply_to=None, raw_body=None, properties=None, headers=None, routing_key=None,
        envelope=None, mandatory=True) -> SentMessage`` publishes a persistent JSON envelope to
        the commands exchange (routing key = type) and waits for the broker's confirm;
        ``.publish_many(specs) -> list[SentMessage]`` (each spec a ``dict`` of the same
        keyword arguments); ``.reply_queue() -> ReplyQueue`` (exclusive, server-named:
        ``.name``, ``.get(timeout) -> ReceivedMessage``, ``.get_many(n, timeout)``,
        ``.drain(quiet=0.2)``); ``.request(type, payload, timeout=15, **kw) -> ReceivedMessage``
        sends with ``reply_to`` and returns the answer, after checking that its AMQP
        ``correlation_id`` equals its envelope ``correlation_id``;
        ``.queue_counts(name) -> (ready, consumers)``, ``.queue_exists(name)``,
        ``.wait_queue_empty(name, timeout)``, ``.purge(name)``,
        ``.dead_letters(queue=None, ack=True) -> list[ReceivedMessage]`` (empties the DLQ into a
        list, or with ``ack=False`` peeks and requeues), ``.wait_dead_letter(predicate,
        timeout, queue=None, ack=True) -> ReceivedMessage``, ``.delete_topology(topology)``,
        ``.publish_raw(exchange, routing_key, body, properties, mandatory=False)``.
    ``EventCollector(url, exchange="fca.events", binding="#")``: declares the exchange and its
    own exclusive queue bound with ``binding`` when constructed (so before any command is
    sent) and collects from a background thread. ``.messages`` (snapshot), ``.events_of_type(t)``,
    ``.caused_by(message_id)``, ``.wait_for(predicate=None, count=1, timeout=15) -> list``,
    ``.wait_caused_by(message_id, count=1, timeout)``, ``.assert_quiet(predicate, quiet=0.3)``,
    ``.clear()``, ``.close()``.
    ``SentMessage``: ``message_id``, ``type``, ``correlation_id`` (as sent, may be None),
    ``expected_correlation_id`` (what events must carry), ``body``, ``properties``.
    ``ReceivedMessage``: ``routing_key``, ``exchange``, ``body``, ``properties``, ``headers``,
    ``persistent``, ``json``, envelope accessors (``message_id``, ``type``, ``correlation_id``,
    ``causation_id``, ``payload``) and ``.parsed()`` (validated with ``contracts.parse_event``).
    ``assert_outcome_message(msg, sent, *, event_type, routing_key=None)``: the contract's
    checks on an event caused by ``sent`` (envelope, AMQP properties, persistence).

Database (asyncpg on a private loop, usable from sync tests)
    ``db_fetch(url, sql, *args) -> list[dict]``, ``db_fetchrow``, ``db_fetchval``,
    ``db_execute``; ``table_fingerprints(url, tables=DOMAIN_TABLES) -> dict`` (md5 of each
    table's rows, to prove that nothing changed).

Facade
    ``Harness(env, worker=None)``: one client + one collector (bound at construction) + the
    database. ``.send(type, payload, **kw)``, ``.outcome(sent, timeout)`` (the first message
    on the events exchange caused by ``sent``), ``.outcomes(sents, timeout) -> {message_id:
    first outcome}``, ``.execute(...)`` (send + outcome),
    ``.expect_event(type, payload, event_type=None, **kw)`` and
    ``.expect_rejection(type, payload, reason, **kw)`` (both run ``assert_outcome_message``),
    ``.query(type, payload, **kw)``, ``.wait_handled(sent)`` (the worker logged
    ``message.handled`` for it), ``.assert_acked(sent)`` (that, no ``message.settle_failed``,
    and the command queue holds no ready message), ``.fetch/.fetchrow/.fetchval(sql, *args)``,
    ``.fingerprint()``, and data builders ``.create_customer(**fields) -> payload``,
    ``.open_account(customer_id, **fields) -> account_number``,
    ``.start_conversation(customer_id, **fields) -> conversation_id``.
    ``harness_for(env, worker=None)``: a context manager yielding a ``Harness`` (closed on exit);
    build it before starting a worker to be sure its collector misses nothing.

Factories and polling
    ``unique_email()``, ``unique_token(n)``, ``new_id()`` (a UUID string), ``unique_code(prefix)``;
    ``wait_until(condition, timeout=15, interval=0.05, message=…)``. ``DEFAULT_TIMEOUT`` = 15 s.

Fixtures (``tests/e2e/conftest.py``): ``worker_env`` (session ``WorkerEnv`` on the session's
vhost and database), ``worker_overrides`` (module; override it in a module to pass settings),
``worker`` (module: one ``WorkerProcess``), ``harness`` (module ``Harness`` on it),
``workers`` (a function-scoped ``WorkerPool``), ``isolated_worker_env`` (a factory:
``isolated_worker_env(**overrides) -> WorkerEnv`` with a fresh database and fresh topology
names, cleaned up after the test).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from tests.support.services import redact, run_sync

__all__ = [
    "DEFAULT_TIMEOUT",
    "DOMAIN_TABLES",
    "AmqpClient",
    "EventCollector",
    "Harness",
    "ReceivedMessage",
    "ReplyQueue",
    "SentMessage",
    "Topology",
    "WorkerEnv",
    "WorkerPool",
    "WorkerProcess",
    "WorkerStartError",
    "assert_outcome_message",
    "db_execute",
    "db_fetch",
    "db_fetchrow",
    "db_fetchval",
    "harness_for",
    "new_id",
    "table_fingerprints",
    "unique_code",
    "unique_email",
    "unique_token",
    "wait_until",
]

T = TypeVar("T")

DEFAULT_TIMEOUT = 15.0
"""Seconds to wait for an outcome before a test fails (generous for slow CI machines)."""

CONTENT_TYPE = "application/json"
PERSISTENT = 2
DOMAIN_TABLES = (
    "customers",
    "accounts",
    "transactions",
    "conversations",
    "messages",
    "products",
    "faqs",
)
"""Tables that hold business data (not the inbox/outbox bookkeeping)."""

_BIN_DIR = Path(sys.executable).parent
WORKER_BIN = _BIN_DIR / "worker"


# --- factories and polling --------------------------------------------------------------------

_sequence = itertools.count(1)


def unique_token(n_bytes: int = 4) -> str:
    """A random lower-case hex string."""
    return secrets.token_hex(n_bytes)


def unique_email(domain: str = "e2e.example") -> str:
    """An email address nobody else uses."""
    return f"e2e-{next(_sequence)}-{unique_token()}@{domain}"


def unique_code(prefix: str = "E2E") -> str:
    """A business-id-shaped code (``PREFIX-<hex>``), e.g. for product codes or references."""
    return f"{prefix}-{unique_token(5)}"


def new_id() -> str:
    """A fresh UUID string (message ids, caller-chosen conversation ids)."""
    return str(uuid.uuid4())


def wait_until(
    condition: Callable[[], T | None],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = 0.05,
    message: str | Callable[[], str] = "condition not met",
) -> T:
    """Poll ``condition`` until it returns something truthy; return that or fail the test."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"timed out after {timeout:.1f}s: {text}")
        time.sleep(interval)


# --- configuration ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Topology:
    """The RabbitMQ names a worker uses (each one a ``WORKER_*`` setting)."""

    commands_exchange: str = "fca.commands"
    command_queue: str = "fca.worker.commands"
    events_exchange: str = "fca.events"
    dead_letter_queue: str = "fca.worker.commands.dlq"

    @classmethod
    def unique(cls, tag: str | None = None) -> Topology:
        """Fresh names nobody else uses: ``e2e.<tag>.commands``, ``e2e.<tag>.worker.commands``…"""
        tag = tag or unique_token()
        return cls(
            commands_exchange=f"e2e.{tag}.commands",
            command_queue=f"e2e.{tag}.worker.commands",
            events_exchange=f"e2e.{tag}.events",
            dead_letter_queue=f"e2e.{tag}.worker.commands.dlq",
        )

    def env(self) -> dict[str, str]:
        """These names as worker settings."""
        return {
            "WORKER_COMMANDS_EXCHANGE": self.commands_exchange,
            "WORKER_COMMAND_QUEUE": self.command_queue,
            "WORKER_EVENTS_EXCHANGE": self.events_exchange,
            "WORKER_DEAD_LETTER_QUEUE": self.dead_letter_queue,
        }

    def retry_queue(self, delay_seconds: int) -> str:
        """The worker's internal delay queue for ``delay_seconds``."""
        return f"{self.command_queue}.retry.{delay_seconds}s"

    def queues(self, retry_delays: Iterable[int] = (1, 5, 30)) -> list[str]:
        """Every queue a worker with these names declares (given its retry delays)."""
        return [
            self.command_queue,
            self.dead_letter_queue,
            *(self.retry_queue(d) for d in retry_delays),
        ]


@dataclass(frozen=True)
class WorkerEnv:
    """Everything a worker process is started with."""

    amqp_url: str
    database_url: str
    topology: Topology = field(default_factory=Topology)
    overrides: Mapping[str, str] = field(default_factory=dict)

    def with_overrides(self, **settings: str | int | float) -> WorkerEnv:
        """A copy with more ``WORKER_*`` settings (later ones win)."""
        merged = {**self.overrides, **{k: str(v) for k, v in settings.items()}}
        return replace(self, overrides=merged)

    @property
    def retry_delays(self) -> tuple[int, ...]:
        """The retry delays this worker will use (for naming its delay queues)."""
        raw = self.overrides.get("WORKER_RETRY_DELAYS", "1,5,30")
        return tuple(int(p) for p in raw.split(",") if p.strip())

    def environ(self) -> dict[str, str]:
        """The process environment: ours minus any ``WORKER_*``, plus this worker's settings."""
        base = {k: v for k, v in os.environ.items() if not k.startswith("WORKER_")}
        settings = {
            "WORKER_AMQP_URL": self.amqp_url,
            "WORKER_DATABASE_URL": self.database_url,
            "WORKER_LOG_FORMAT": "json",
            "WORKER_METRICS_PORT": "0",
            **self.topology.env(),
            **self.overrides,
        }
        return {**base, "PYTHONUNBUFFERED": "1", **settings}


# --- the worker process -----------------------------------------------------------------------


class WorkerStartError(RuntimeError):
    """The worker did not migrate or did not log ``worker.started`` in time."""


class WorkerProcess:
    """One ``worker run`` subprocess whose output goes to a log file."""

    def __init__(self, env: WorkerEnv, log_path: Path, *, name: str = "worker") -> None:
        self.env = env
        self.log_path = log_path
        self.name = name
        self.process: subprocess.Popen[bytes] | None = None
        self._started_before = 0

    def __repr__(self) -> str:
        return f"<WorkerProcess {self.name} pid={self.pid} rc={self.returncode}>"

    # lifecycle

    def migrate(self, timeout: float = 60) -> None:
        """Run ``worker db upgrade`` to completion (raises ``WorkerStartError`` on failure)."""
        with self.log_path.open("ab") as log:
            try:
                result = subprocess.run(
                    [str(WORKER_BIN), "db", "upgrade"],
                    env=self.env.environ(),
                    cwd=self.log_path.parent,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    timeout=timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise WorkerStartError(self._failure("db upgrade timed out")) from exc
        if result.returncode != 0:
            raise WorkerStartError(self._failure(f"db upgrade exited {result.returncode}"))

    def start(
        self, *, timeout: float = 30, migrate: bool = True, wait: bool = True
    ) -> WorkerProcess:
        """Migrate (optionally), launch ``worker run`` and (optionally) wait until started."""
        if self.is_running:
            raise RuntimeError(f"{self.name} is already running")
        if migrate:
            self.migrate()
        self._started_before = self._started_count()  # a restart appends to the same log
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                [str(WORKER_BIN), "run"],
                env=self.env.environ(),
                cwd=self.log_path.parent,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C on pytest does not reach it twice
            )
        finally:
            log.close()
        if wait:
            self.wait_started(timeout)
        return self

    def wait_started(self, timeout: float = 30) -> None:
        """Wait for the ``worker.started`` log line; on exit or timeout kill and raise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._started_count() > self._started_before:
                return
            if self.process is not None and self.process.poll() is not None:
                raise WorkerStartError(self._failure(f"exited {self.process.returncode}"))
            time.sleep(0.05)
        self.kill()
        raise WorkerStartError(self._failure(f"no worker.started within {timeout:.0f}s"))

    def _started_count(self) -> int:
        return self.count_log("worker.started")

    @property
    def pid(self) -> int | None:
        """The process id, once started."""
        return self.process.pid if self.process is not None else None

    @property
    def returncode(self) -> int | None:
        """The exit status, once the process has ended."""
        return self.process.poll() if self.process is not None else None

    @property
    def is_running(self) -> bool:
        """Whether the process was started and has not exited."""
        return self.process is not None and self.process.poll() is None

    def send_signal(self, signum: int) -> None:
        """Send a signal to the worker process (not its children)."""
        if self.is_running:
            assert self.process is not None
            self.process.send_signal(signum)

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, wait up to ``timeout`` for a graceful exit (SIGKILL after); the exit code."""
        if self.process is None:
            return 0
        self.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return self.kill()

    def kill(self) -> int:
        """SIGKILL and reap; returns the exit code (``-9`` when it was still running)."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.kill()
        return self.process.wait(10)

    def wait_exit(self, timeout: float = 30) -> int:
        """Wait for the process to exit on its own; the exit code."""
        assert self.process is not None, "not started"
        return self.process.wait(timeout)

    # logs

    def logs(self) -> str:
        """Everything the process (and its migration) wrote so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the log."""
        return "\n".join(self.logs().splitlines()[-lines:])

    def log_records(self) -> list[dict[str, Any]]:
        """The JSON log lines as dicts (non-JSON lines such as tracebacks are skipped)."""
        records = []
        for line in self.logs().splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    records.append(json.loads(line))
        return records

    def find_logs(self, event: str, **fields: Any) -> list[dict[str, Any]]:
        """Log records with this ``event`` whose fields equal ``fields``."""
        return [
            r
            for r in self.log_records()
            if r.get("event") == event and all(r.get(k) == v for k, v in fields.items())
        ]

    def count_log(self, event: str, **fields: Any) -> int:
        """How many log records match (see :meth:`find_logs`)."""
        return len(self.find_logs(event, **fields))

    def wait_for_log(
        self, event: str, *, timeout: float = DEFAULT_TIMEOUT, **fields: Any
    ) -> dict[str, Any]:
        """Wait for a matching log record and return the first one."""
        found = wait_until(
            lambda: self.find_logs(event, **fields),
            timeout=timeout,
            interval=0.05,
            message=lambda: f"{self.name}: no log {event} {fields}; tail:\n{self.log_tail()}",
        )
        return found[0]

    def _failure(self, what: str) -> str:
        env = self.env
        return (
            f"{self.name} {what} (broker {redact(env.amqp_url)}, database "
            f"{redact(env.database_url)}); log {self.log_path}:\n{self.log_tail(60)}"
        )


class WorkerPool:
    """Starts workers with one log file each and stops every one of them at the end."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.processes: list[WorkerProcess] = []

    def spawn(self, env: WorkerEnv, *, name: str | None = None) -> WorkerProcess:
        """A worker that is tracked (and killed at teardown) but not started yet."""
        name = name or f"worker-{len(self.processes) + 1}-{unique_token(3)}"
        process = WorkerProcess(env, self.log_dir / f"{name}.log", name=name)
        self.processes.append(process)
        return process

    def start(self, env: WorkerEnv, *, name: str | None = None, **start: Any) -> WorkerProcess:
        """Spawn and start a worker (``start`` passes ``timeout``, ``migrate``, ``wait``)."""
        return self.spawn(env, name=name).start(**start)

    def stop_all(self, timeout: float = 10) -> None:
        """SIGTERM every running worker, SIGKILL those that do not exit in time."""
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes:
            if process.process is None:
                continue
            try:
                process.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()

    def kill_all(self) -> None:
        """SIGKILL every worker still running."""
        for process in self.processes:
            process.kill()


# --- messages ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SentMessage:
    """A command or query as published."""

    message_id: str
    type: str
    correlation_id: str | None
    body: bytes
    properties: pika.BasicProperties
    routing_key: str

    @property
    def expected_correlation_id(self) -> str:
        """What the outcome must carry: the given correlation id, else the message id."""
        return self.correlation_id if self.correlation_id is not None else self.message_id


@dataclass(frozen=True)
class ReceivedMessage:
    """A message taken from a queue (an event, a reply or a dead letter)."""

    routing_key: str
    exchange: str
    body: bytes
    properties: pika.BasicProperties
    redelivered: bool = False
    received_at: float = field(default_factory=time.time)

    @cached_property
    def json(self) -> Any:
        """The body parsed as JSON, or ``None`` if it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def _field(self, name: str) -> Any:
        data = self.json
        return data.get(name) if isinstance(data, dict) else None

    @property
    def message_id(self) -> str | None:
        """The envelope's ``message_id``."""
        return self._field("message_id")  # type: ignore[no-any-return]

    @property
    def type(self) -> str | None:
        """The envelope's ``type``."""
        return self._field("type")  # type: ignore[no-any-return]

    @property
    def correlation_id(self) -> str | None:
        """The envelope's ``correlation_id``."""
        return self._field("correlation_id")  # type: ignore[no-any-return]

    @property
    def causation_id(self) -> str | None:
        """The envelope's ``causation_id`` (the causing command's message id)."""
        return self._field("causation_id")  # type: ignore[no-any-return]

    @property
    def payload(self) -> dict[str, Any]:
        """The envelope's ``payload`` (empty if absent)."""
        value = self._field("payload")
        return value if isinstance(value, dict) else {}

    @property
    def headers(self) -> dict[str, Any]:
        """The AMQP headers, with byte values decoded."""
        raw = self.properties.headers or {}
        return {
            k: v.decode(errors="replace") if isinstance(v, bytes) else v for k, v in raw.items()
        }

    @property
    def persistent(self) -> bool:
        """Whether it was published with delivery mode 2."""
        return bool(self.properties.delivery_mode == PERSISTENT)

    def parsed(self) -> Any:
        """The body validated against the contract (``contracts.parse_event``)."""
        from contracts import parse_event

        return parse_event(self.body)

    def __repr__(self) -> str:
        return (
            f"<{self.type or '?'} rk={self.routing_key!r} id={self.message_id} "
            f"cause={self.causation_id} payload={self.payload}>"
        )


def assert_outcome_message(
    message: ReceivedMessage,
    sent: SentMessage,
    *,
    event_type: str,
    routing_key: str | None = None,
) -> None:
    """Check what the contract says about an outcome of ``sent`` (event, rejection, reply)."""
    assert message.type == event_type, f"expected {event_type}, got {message!r}"
    if routing_key is not None:
        assert message.routing_key == routing_key, message
    assert message.causation_id == sent.message_id, message
    assert message.correlation_id == sent.expected_correlation_id, message
    assert message.message_id, message
    assert message.message_id != sent.message_id, message
    props = message.properties
    assert props.message_id == message.message_id, (props.message_id, message)
    assert props.type == event_type, (props.type, message)
    assert props.correlation_id == message.correlation_id, (props.correlation_id, message)
    assert props.content_type == CONTENT_TYPE, props.content_type
    assert isinstance(props.timestamp, int), props.timestamp
    assert abs(props.timestamp - time.time()) < 300, props.timestamp
    assert message.persistent, f"delivery mode {props.delivery_mode}"
    message.parsed()  # the body is a valid contract message


# --- the AMQP client --------------------------------------------------------------------------


def _connection_parameters(url: str) -> pika.URLParameters:
    params = pika.URLParameters(url)
    params.heartbeat = 600  # sync tests may leave a connection idle for a while
    params.blocked_connection_timeout = 60
    params.connection_attempts = 3
    params.retry_delay = 0.5
    return params


def _received(
    method: Any, properties: pika.BasicProperties, body: bytes
) -> ReceivedMessage:  # method: Basic.Deliver or Basic.GetOk
    return ReceivedMessage(
        routing_key=method.routing_key,
        exchange=method.exchange,
        body=body,
        properties=properties,
        redelivered=bool(method.redelivered),
    )


class ReplyQueue:
    """An exclusive, server-named queue on the client's channel, consumed with auto-ack."""

    def __init__(self, client: AmqpClient) -> None:
        self._client = client
        result = client.channel.queue_declare("", exclusive=True, auto_delete=True)
        self.name: str = result.method.queue
        self._inbox: deque[ReceivedMessage] = deque()
        self._tag = client.channel.basic_consume(self.name, self._on_message, auto_ack=True)

    def _on_message(
        self, _ch: BlockingChannel, method: Any, properties: pika.BasicProperties, body: bytes
    ) -> None:
        self._inbox.append(_received(method, properties, body))

    def get(self, timeout: float = DEFAULT_TIMEOUT) -> ReceivedMessage:
        """The next message, waiting up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not self._inbox:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no reply on {self.name} within {timeout:.1f}s")
            self._client.connection.process_data_events(time_limit=min(remaining, 0.1))
        return self._inbox.popleft()

    def get_many(self, count: int, timeout: float = DEFAULT_TIMEOUT) -> list[ReceivedMessage]:
        """The next ``count`` messages, within ``timeout`` in total."""
        deadline = time.monotonic() + timeout
        return [self.get(max(0.01, deadline - time.monotonic())) for _ in range(count)]

    def drain(self, quiet: float = 0.2) -> list[ReceivedMessage]:
        """Everything that arrives until nothing has arrived for ``quiet`` seconds."""
        messages: list[ReceivedMessage] = []
        while True:
            self._client.connection.process_data_events(time_limit=quiet)
            if not self._inbox:
                return messages
            while self._inbox:
                messages.append(self._inbox.popleft())

    def close(self) -> None:
        """Cancel the consumer (the queue goes with it)."""
        with contextlib.suppress(Exception):
            self._client.channel.basic_cancel(self._tag)


class AmqpClient:
    """A plain pika publisher/consumer, independent of the worker's code."""

    def __init__(self, url: str, topology: Topology | None = None) -> None:
        self.url = url
        self.topology = topology or Topology()
        self.connection = pika.BlockingConnection(_connection_parameters(url))
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()

    def __enter__(self) -> AmqpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with contextlib.suppress(Exception):
            if self.connection.is_open:
                self.connection.close()

    # publishing

    def publish_command(
        self,
        type: str,
        payload: Mapping[str, Any] | None = None,
        *,
        message_id: str | None = None,
        correlation_id: str | None = None,
        reply_to: str | None = None,
        raw_body: bytes | None = None,
        properties: Mapping[str, Any] | None = None,
        headers: Mapping[str, Any] | None = None,
        routing_key: str | None = None,
        envelope: Mapping[str, Any] | None = None,
        mandatory: bool = True,
    ) -> SentMessage:
        """Publish one command or query to the commands exchange and wait for the confirm.

        The body is ``{"message_id", "type", "correlation_id"?, "payload", **envelope}`` unless
        ``raw_body`` is given (then it is sent as is). ``properties`` overrides any AMQP
        property (``pika.BasicProperties`` keyword arguments). With ``mandatory`` an unroutable
        message raises ``pika.exceptions.UnroutableError`` instead of vanishing.
        """
        message_id = message_id or new_id()
        if raw_body is None:
            body_dict: dict[str, Any] = {"message_id": message_id, "type": type}
            if correlation_id is not None:
                body_dict["correlation_id"] = correlation_id
            body_dict["payload"] = dict(payload or {})
            body_dict.update(envelope or {})
            body = json.dumps(body_dict).encode()
        else:
            body = raw_body
        props: dict[str, Any] = {
            "content_type": CONTENT_TYPE,
            "delivery_mode": PERSISTENT,
            "message_id": message_id,
            "type": type,
            "timestamp": int(time.time()),
        }
        if correlation_id is not None:
            props["correlation_id"] = correlation_id
        if reply_to is not None:
            props["reply_to"] = reply_to
        if headers is not None:
            props["headers"] = dict(headers)
        props.update(properties or {})
        basic = pika.BasicProperties(**props)
        key = routing_key if routing_key is not None else type
        self.channel.basic_publish(
            self.topology.commands_exchange, key, body, basic, mandatory=mandatory
        )
        return SentMessage(message_id, type, correlation_id, body, basic, key)

    def publish_many(self, specs: Iterable[Mapping[str, Any]]) -> list[SentMessage]:
        """Publish several commands in order; each spec holds ``publish_command``'s arguments."""
        return [self.publish_command(**spec) for spec in specs]

    def publish_raw(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: pika.BasicProperties | None = None,
        *,
        mandatory: bool = False,
    ) -> None:
        """Publish arbitrary bytes anywhere (e.g. straight into a queue via ``""``)."""
        props = properties or pika.BasicProperties(delivery_mode=PERSISTENT)
        self.channel.basic_publish(exchange, routing_key, body, props, mandatory=mandatory)

    # request/reply

    def reply_queue(self) -> ReplyQueue:
        """A fresh exclusive queue to pass as ``reply_to``."""
        return ReplyQueue(self)

    def request(
        self,
        type: str,
        payload: Mapping[str, Any] | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        **publish: Any,
    ) -> ReceivedMessage:
        """Send with ``reply_to`` and return the answer (QueryResult, event or rejection).

        Fails unless the answer's AMQP ``correlation_id`` equals its envelope's, and its
        ``causation_id`` is the request's message id.
        """
        replies = self.reply_queue()
        try:
            sent = self.publish_command(type, payload, reply_to=replies.name, **publish)
            answer = replies.get(timeout)
        finally:
            replies.close()
        assert answer.properties.correlation_id == answer.correlation_id, (
            f"AMQP correlation_id {answer.properties.correlation_id!r} != envelope "
            f"{answer.correlation_id!r}"
        )
        assert answer.causation_id == sent.message_id, answer
        return answer

    # queues

    def _with_scratch_channel(self, action: Callable[[BlockingChannel], T]) -> T:
        """Run ``action`` on a throw-away channel (a failed passive declare closes it)."""
        channel = self.connection.channel()
        try:
            return action(channel)
        finally:
            with contextlib.suppress(Exception):
                if channel.is_open:
                    channel.close()

    def queue_counts(self, name: str) -> tuple[int, int]:
        """``(ready messages, consumers)`` of a queue (unacknowledged ones are not counted)."""
        result = self._with_scratch_channel(lambda ch: ch.queue_declare(name, passive=True))
        return result.method.message_count, result.method.consumer_count

    def queue_exists(self, name: str) -> bool:
        """Whether the queue exists."""
        try:
            self.queue_counts(name)
        except pika.exceptions.ChannelClosedByBroker:
            return False
        return True

    def wait_queue_empty(self, name: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Wait until the queue holds no ready message."""
        wait_until(
            lambda: self.queue_counts(name)[0] == 0,
            timeout=timeout,
            message=lambda: f"{name} still holds {self.queue_counts(name)[0]} messages",
        )

    def purge(self, name: str) -> int:
        """Drop every ready message of a queue; how many there were."""
        result = self._with_scratch_channel(lambda ch: ch.queue_purge(name))
        return int(result.method.message_count)

    def dead_letters(self, queue: str | None = None, *, ack: bool = True) -> list[ReceivedMessage]:
        """Every message now in the DLQ; removed from it unless ``ack=False`` (then requeued)."""
        name = queue or self.topology.dead_letter_queue

        def take(channel: BlockingChannel) -> list[ReceivedMessage]:
            taken = []
            while True:
                method, properties, body = channel.basic_get(name, auto_ack=False)
                if method is None:
                    break
                taken.append((method.delivery_tag, _received(method, properties, body)))
            if taken:
                last_tag = taken[-1][0]
                if ack:
                    channel.basic_ack(last_tag, multiple=True)
                else:
                    channel.basic_nack(last_tag, multiple=True, requeue=True)
            return [message for _, message in taken]

        return self._with_scratch_channel(take)

    def wait_dead_letter(
        self,
        predicate: Callable[[ReceivedMessage], bool],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        queue: str | None = None,
        ack: bool = True,
    ) -> ReceivedMessage:
        """Wait for a DLQ message matching ``predicate``; others taken meanwhile are requeued."""
        name = queue or self.topology.dead_letter_queue
        found: list[ReceivedMessage] = []

        def look() -> bool:
            for message in self.dead_letters(name, ack=False):
                if predicate(message):
                    found.append(message)
                    return True
            return False

        wait_until(look, timeout=timeout, interval=0.1, message=f"no matching message in {name}")
        if ack:  # take exactly the matching one out, requeue the rest
            self._remove_matching(name, predicate)
        return found[0]

    def _remove_matching(self, name: str, predicate: Callable[[ReceivedMessage], bool]) -> None:
        def remove(channel: BlockingChannel) -> None:
            keep = []
            while True:
                method, properties, body = channel.basic_get(name, auto_ack=False)
                if method is None:
                    break
                if predicate(_received(method, properties, body)):
                    channel.basic_ack(method.delivery_tag)
                else:
                    keep.append(method.delivery_tag)
            for tag in keep:
                channel.basic_nack(tag, requeue=True)

        self._with_scratch_channel(remove)

    def delete_topology(self, topology: Topology, retry_delays: Iterable[int] = (1, 5, 30)) -> None:
        """Delete a worker's queues and exchanges (best effort; for isolated topologies)."""
        for queue in topology.queues(retry_delays):
            with contextlib.suppress(Exception):
                self._with_scratch_channel(functools.partial(_delete_queue, name=queue))
        for exchange in (topology.commands_exchange, topology.events_exchange):
            with contextlib.suppress(Exception):
                self._with_scratch_channel(functools.partial(_delete_exchange, name=exchange))


def _delete_queue(channel: BlockingChannel, *, name: str) -> None:
    channel.queue_delete(name)


def _delete_exchange(channel: BlockingChannel, *, name: str) -> None:
    channel.exchange_delete(name)


# --- the event collector ----------------------------------------------------------------------


class EventCollector:
    """Everything published to an exchange, collected by a background consumer.

    The exchange is declared (as the worker declares it) and the queue bound before the
    constructor returns, so no event published afterwards can be missed.
    """

    def __init__(self, url: str, *, exchange: str = "fca.events", binding: str = "#") -> None:
        self.exchange = exchange
        self._messages: list[ReceivedMessage] = []
        self._cond = threading.Condition()
        self._connection = pika.BlockingConnection(_connection_parameters(url))
        channel = self._connection.channel()
        channel.exchange_declare(exchange, exchange_type="topic", durable=True)
        self.queue: str = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
        channel.queue_bind(self.queue, exchange, routing_key=binding)
        channel.basic_consume(self.queue, self._on_message, auto_ack=True)
        self._channel = channel
        self._thread = threading.Thread(
            target=self._consume, name=f"collector-{exchange}", daemon=True
        )
        self._thread.start()

    def _consume(self) -> None:
        with contextlib.suppress(Exception):  # closed under us at teardown
            self._channel.start_consuming()

    def _on_message(
        self, _ch: BlockingChannel, method: Any, properties: pika.BasicProperties, body: bytes
    ) -> None:
        message = _received(method, properties, body)
        with self._cond:
            self._messages.append(message)
            self._cond.notify_all()

    def close(self) -> None:
        """Stop consuming and close the connection."""
        with contextlib.suppress(Exception):
            self._connection.add_callback_threadsafe(self._channel.stop_consuming)
            self._thread.join(5)
        with contextlib.suppress(Exception):
            self._connection.close()

    @property
    def messages(self) -> list[ReceivedMessage]:
        """A snapshot of everything collected so far, in arrival order."""
        with self._cond:
            return list(self._messages)

    def clear(self) -> None:
        """Forget everything collected so far."""
        with self._cond:
            self._messages.clear()

    def events_of_type(self, event_type: str) -> list[ReceivedMessage]:
        """Collected messages whose envelope ``type`` is ``event_type``."""
        return [m for m in self.messages if m.type == event_type]

    def caused_by(self, message_id: str | SentMessage) -> list[ReceivedMessage]:
        """Collected messages whose ``causation_id`` is this command's message id."""
        wanted = message_id.message_id if isinstance(message_id, SentMessage) else message_id
        return [m for m in self.messages if m.causation_id == wanted]

    def wait_for(
        self,
        predicate: Callable[[ReceivedMessage], bool] | None = None,
        *,
        count: int = 1,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> list[ReceivedMessage]:
        """Wait until ``count`` matching messages have arrived; return (the first ``count`` of)
        them in arrival order."""
        match = predicate or (lambda _m: True)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [m for m in self._messages if match(m)]
                if len(found) >= count:
                    return found[:count]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    recent = self._messages[-5:]
                    raise AssertionError(
                        f"expected {count} matching messages on {self.exchange} within "
                        f"{timeout:.1f}s, got {len(found)}; last received: {recent}"
                    )
                self._cond.wait(min(remaining, 0.5))

    def wait_caused_by(
        self, message_id: str | SentMessage, *, count: int = 1, timeout: float = DEFAULT_TIMEOUT
    ) -> list[ReceivedMessage]:
        """Wait for ``count`` messages caused by a command."""
        wanted = message_id.message_id if isinstance(message_id, SentMessage) else message_id
        return self.wait_for(lambda m: m.causation_id == wanted, count=count, timeout=timeout)

    def assert_quiet(
        self, predicate: Callable[[ReceivedMessage], bool], *, quiet: float = 0.3
    ) -> None:
        """Wait ``quiet`` seconds and fail if any matching message has arrived by then."""
        time.sleep(quiet)
        found = [m for m in self.messages if predicate(m)]
        assert not found, f"unexpected messages on {self.exchange}: {found}"


# --- the database -----------------------------------------------------------------------------


def _dsn(url: str) -> str:
    """A ``postgresql+asyncpg://`` (or ``postgres://``) URL as an asyncpg DSN."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql"))


async def _run(url: str, method: str, sql: str, args: Sequence[Any]) -> Any:
    connection = await asyncpg.connect(_dsn(url), timeout=10)
    try:
        return await getattr(connection, method)(sql, *args)
    finally:
        await connection.close()


def db_fetch(url: str, sql: str, *args: Any) -> list[dict[str, Any]]:
    """Run a query; its rows as dicts."""
    return [dict(r) for r in run_sync(_run(url, "fetch", sql, args))]


def db_fetchrow(url: str, sql: str, *args: Any) -> dict[str, Any] | None:
    """Run a query; its first row as a dict, or ``None``."""
    row = run_sync(_run(url, "fetchrow", sql, args))
    return dict(row) if row is not None else None


def db_fetchval(url: str, sql: str, *args: Any) -> Any:
    """Run a query; the first column of its first row."""
    return run_sync(_run(url, "fetchval", sql, args))


def db_execute(url: str, sql: str, *args: Any) -> str:
    """Run a statement; asyncpg's status string."""
    return run_sync(_run(url, "execute", sql, args))  # type: ignore[no-any-return]


async def _fingerprints(url: str, tables: Sequence[str]) -> dict[str, str]:
    connection = await asyncpg.connect(_dsn(url), timeout=10)
    try:
        result = {}
        for table in tables:
            sql = f"SELECT count(*)::text || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t.id)), '') FROM {table} t"  # noqa: E501
            result[table] = await connection.fetchval(sql)
        return result
    finally:
        await connection.close()


def table_fingerprints(url: str, tables: Sequence[str] = DOMAIN_TABLES) -> dict[str, str]:
    """Row count and md5 of every row of each table: equal fingerprints, unchanged tables."""
    return run_sync(_fingerprints(url, tables))


# --- the facade -------------------------------------------------------------------------------


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

    def assert_acked(self, sent: SentMessage, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        """The worker settled ``sent`` (ack, or ack after a retry/DLQ republish) without a
        settle failure (which would nack it), and the command queue holds nothing ready."""
        record = self.wait_handled(sent, timeout=timeout)
        assert record.get("action") in {"ack", "retry", "dead_letter"}, record
        assert self.worker is not None
        failed = self.worker.find_logs("message.settle_failed", message_id=sent.message_id)
        assert not failed, failed
        self.client.wait_queue_empty(self.topology.command_queue, timeout=timeout)

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
