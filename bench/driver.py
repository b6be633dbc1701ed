"""The load generator: a pipelined confirmed publisher and an event subscriber (raw aiormq).

The publisher sends persistent commands to the commands exchange with publisher confirms,
keeping many confirms in flight (it never waits for one before sending the next), each with
its ``fca-ordering-key`` header, as a contract v2 publisher does (the header picks the
partition). The
subscriber owns an exclusive queue bound to the events exchange with ``#`` and matches each
event to its command through ``causation_id`` (the command's ``message_id``); the first event
per command counts. Times are ``time.perf_counter()`` in this one process.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiormq
from aiormq.abc import DeliveredMessage
from pamqp.commands import Basic

from bench.workload import Command, Workload
from contracts import HEADER_ORDERING_KEY

PERSISTENT = 2
STALL_SECONDS = 60.0
"""Give up when no event arrives for this long while commands are outstanding."""


class BenchError(RuntimeError):
    """The run could not complete (a process died, events stopped coming, a publish failed)."""


@dataclass(frozen=True, slots=True)
class Names:
    """The exchanges of the system under test (commands go in, events come out)."""

    commands_exchange: str = "fca.commands"
    events_exchange: str = "fca.events"


@dataclass
class Sink:
    """Counts events per command and times them; keeps event bodies when asked to."""

    pending: dict[str, float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    types: Counter[str] = field(default_factory=Counter)
    kept: list[dict[str, Any]] | None = None
    events: int = 0
    strays: int = 0
    last_at: float = 0.0
    progress: asyncio.Event = field(default_factory=asyncio.Event)

    def reset(self, *, keep: bool = False) -> None:
        """Start a new phase."""
        self.latencies, self.arrivals, self.types = [], [], Counter()
        self.events, self.strays = 0, 0
        self.kept = [] if keep else None

    async def on_message(self, message: DeliveredMessage) -> None:
        now = time.perf_counter()
        doc = json.loads(message.body)
        sent = self.pending.pop(doc.get("causation_id"), None)
        if sent is None:
            self.strays += 1  # a second event of a command, or one from an earlier phase
            return
        self.events += 1
        self.last_at = now
        self.progress.set()
        self.latencies.append(now - sent)
        self.arrivals.append(now)
        self.types[doc.get("type", "?")] += 1
        if self.kept is not None:
            self.kept.append(doc)


class Driver:
    """One connection for publishing, one for the subscriber; phases run one after another."""

    def __init__(self, publish: aiormq.Connection, subscribe: aiormq.Connection, names: Names):
        self._publish_connection, self._subscribe_connection = publish, subscribe
        self.names = names
        self.sink = Sink()
        self._channel: Any = None
        self._window = asyncio.Semaphore(2000)
        self._tasks: set[asyncio.Task[None]] = set()
        self.nacked = 0
        self.errors: list[str] = []

    @classmethod
    async def connect(cls, amqp_url: str, names: Names) -> Driver:
        """Connect, declare the exchanges (idempotent) and bind the subscriber's queue."""
        publish = await aiormq.connect(amqp_url)
        subscribe = await aiormq.connect(amqp_url)
        driver = cls(publish, subscribe, names)
        try:
            driver._channel = await publish.channel(publisher_confirms=True)
            for name in (names.commands_exchange, names.events_exchange):
                await driver._channel.exchange_declare(name, exchange_type="topic", durable=True)
            channel = await subscribe.channel()
            declared = await channel.queue_declare("", exclusive=True, auto_delete=True)
            queue = declared.queue or ""
            await channel.queue_bind(queue, names.events_exchange, routing_key="#")
            await channel.basic_consume(queue, driver.sink.on_message, no_ack=True)
        except BaseException:
            await driver.close()
            raise
        return driver

    async def close(self) -> None:
        """Close both connections."""
        for connection in (self._publish_connection, self._subscribe_connection):
            try:
                await connection.close()
            except Exception as exc:
                self.errors.append(f"close: {exc!r}")

    async def send(self, command: Command, at: float | None = None) -> None:
        """Publish without waiting for the confirm (at most 2000 unconfirmed)."""
        await self._window.acquire()
        self.sink.pending[command.message_id] = time.perf_counter() if at is None else at
        task = asyncio.create_task(self._publish(command))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish(self, command: Command) -> None:
        properties = Basic.Properties(
            content_type="application/json",
            delivery_mode=PERSISTENT,
            message_id=command.message_id,
            message_type=command.type,
            headers={HEADER_ORDERING_KEY: command.key},
        )
        try:
            confirm = await self._channel.basic_publish(
                command.body,
                exchange=self.names.commands_exchange,
                routing_key=command.type,
                properties=properties,
            )
            if not isinstance(confirm, Basic.Ack):
                self.nacked += 1
        except Exception as exc:
            self.errors.append(f"publish: {exc!r}")
        finally:
            self._window.release()

    async def _drain(self, check: Callable[[], None]) -> None:
        """Wait for every confirm, then for an event for every command sent."""
        await asyncio.gather(*list(self._tasks))
        if self.errors or self.nacked:
            raise BenchError(f"publishing failed: {self.nacked} nacked, {self.errors[:3]}")
        seen, progress_at = self.sink.events, time.monotonic()
        while self.sink.pending:
            await asyncio.sleep(0.02)
            if self.sink.events != seen:
                seen, progress_at = self.sink.events, time.monotonic()
            elif time.monotonic() - progress_at > STALL_SECONDS:
                raise BenchError(
                    f"{len(self.sink.pending)} commands had no event after {STALL_SECONDS:.0f}s"
                )
            check()

    async def burst(
        self, commands: Iterable[Command], check: Callable[[], None], backlog: int | None = None
    ) -> dict[str, Any]:
        """Publish as fast as possible (at most ``backlog`` awaiting their event) and wait
        for every event: throughput from the first publish to the last event."""
        self.sink.reset()
        started, count = time.perf_counter(), 0
        for command in commands:
            while backlog is not None and len(self.sink.pending) >= backlog:
                self.sink.progress.clear()
                try:
                    await asyncio.wait_for(self.sink.progress.wait(), STALL_SECONDS)
                except TimeoutError:
                    raise BenchError(f"no event for {STALL_SECONDS:.0f}s") from None
            await self.send(command)
            count += 1
            if count % 1000 == 0:
                check()
        await self._drain(check)
        seconds = self.sink.last_at - started
        return {
            "commands": count,
            "events": self.sink.events,
            "seconds": round(seconds, 3),
            "msgs_per_s": round(count / seconds, 1),
            "event_types": dict(self.sink.types),
            "rejected": self.sink.types.get("CommandRejected", 0),
            "dead_lettered": self.sink.types.get("CommandDeadLettered", 0),
        }

    async def steady(
        self, commands: list[Command], rate: float, check: Callable[[], None]
    ) -> dict[str, Any]:
        """Publish at a fixed rate; latency = event received - intended publish time."""
        self.sink.reset()
        start = time.perf_counter() + 0.05
        for i, command in enumerate(commands):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0.001:
                await asyncio.sleep(delay)
            await self.send(command, at=min(due, time.perf_counter()))
        published = time.perf_counter() - start
        await self._drain(check)
        return {
            "offered_rate": round(rate, 1),
            "achieved_rate": round(len(commands) / max(published, 1e-9), 1),
            "commands": len(commands),
            "events": self.sink.events,
            **percentiles(self.sink.latencies),
            "per_second": per_second(self.sink.arrivals, self.sink.latencies, start),
        }

    async def warm_up(self, workload: Workload, customers: int, check: Callable[[], None]) -> int:
        """Make the customers, accounts and conversations the mix refers to; returns commands."""
        waves: list[Callable[[], list[Command]]] = [
            lambda: workload.warmup_customers(customers),
            workload.warmup_dependents,
            workload.warmup_activity,
        ]
        total = 0
        for make in waves:
            commands = make()
            _collect_ids(workload, await self.burst_kept(commands, check))
            total += len(commands)
        return total

    async def burst_kept(self, commands: list[Command], check: Callable[[], None]) -> list[Any]:
        """Publish and wait, keeping every event body."""
        self.sink.reset(keep=True)
        for command in commands:
            await self.send(command)
        await self._drain(check)
        kept = self.sink.kept or []
        rejected = [e for e in kept if e.get("type") in ("CommandRejected", "CommandDeadLettered")]
        if rejected:
            raise BenchError(f"warm-up commands failed: {rejected[0].get('payload')}")
        return kept


def _collect_ids(workload: Workload, events: list[dict[str, Any]]) -> None:
    for event in events:
        payload = event.get("payload", {})
        if event.get("type") == "CustomerCreated":
            workload.customers.append(payload["customer_id"])
        elif event.get("type") == "AccountOpened":
            workload.accounts.append(payload["account_number"])


def percentiles(seconds: list[float]) -> dict[str, float]:
    """p50/p95/p99/max in milliseconds (nearest rank)."""
    if not seconds:
        return {}
    ordered = sorted(seconds)

    def rank(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000, 2)

    return {"p50_ms": rank(50), "p95_ms": rank(95), "p99_ms": rank(99), "max_ms": rank(100)}


def per_second(arrivals: list[float], latencies: list[float], start: float) -> list[list[float]]:
    """Latency over time: ``[second, events, p50 ms, max ms]`` per second of arrival."""
    buckets: dict[int, list[float]] = {}
    for at, latency in zip(arrivals, latencies, strict=True):
        buckets.setdefault(int(at - start), []).append(latency)
    series = []
    for second in sorted(buckets):
        values = sorted(buckets[second])
        p50, top = values[len(values) // 2], values[-1]
        series.append([second, len(values), round(p50 * 1000, 1), round(top * 1000, 1)])
    return series
