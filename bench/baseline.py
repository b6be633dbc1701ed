"""The baseline: the least code that does the worker's job per message, in raw aio-pika + asyncpg.

Input: the worker's own contract v2 path, so that the broker does the same work for both:
the commands exchange, the consistent-hash exchange on ``fca-ordering-key``, and
``WORKER_PARTITIONS`` quorum single-active-consumer partition queues, all consumed by this
one process (prefetch ``WORKER_PREFETCH`` per partition, as the worker's setting is).

Per command, under a limit of ``WORKER_CONCURRENCY`` handlers: validate the body with the
contract's pydantic models; one transaction inserting the inbox row, one domain row (a
customer, whatever the command) and the outbox row; publish the event with a publisher
confirm; ack. Like the worker's relay, a background task marks the confirmed outbox rows as
sent, in one UPDATE every 50 ms. Durable everything, ack after commit.

Run by the benchmark as its own process, configured like the worker (``WORKER_AMQP_URL``,
``WORKER_DATABASE_URL``, ``WORKER_PREFETCH``, ``WORKER_CONCURRENCY``, ``WORKER_EVENT_LOOP``,
``WORKER_PARTITIONS`` and the ``WORKER_*`` exchange and queue names)::

    python -m bench.baseline
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from datetime import UTC, datetime

import aio_pika
import asyncpg
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage

from contracts import (
    COMMAND_QUEUE_BINDING_KEY,
    HEADER_ORDERING_KEY,
    PARTITIONS_EXCHANGE_TYPE,
    event_id,
    parse_message,
    partition_queue_name,
    partitions_exchange_name,
)

# The success event of each command (type, routing key), as the worker would publish it.
EVENTS = {
    "CreateCustomer": ("CustomerCreated", "customer.created"),
    "OpenAccount": ("AccountOpened", "account.opened"),
    "RecordTransaction": ("TransactionRecorded", "transaction.recorded"),
    "StartConversation": ("ConversationStarted", "conversation.started"),
    "AppendMessage": ("MessageAppended", "conversation.message_appended"),
}
INBOX = "INSERT INTO inbox_messages (message_id, message_type, outcome) VALUES ($1, $2, $3)"
DOMAIN = "INSERT INTO customers (customer_id, email, full_name) VALUES ($1, $2, $3)"
OUTBOX = (
    "INSERT INTO outbox_events (message_id, event_type, routing_key, correlation_id, body)"
    " VALUES ($1, $2, $3, $4, $5) RETURNING id"
)
MARK = "UPDATE outbox_events SET published_at = now() WHERE id = ANY($1::bigint[])"
MARK_INTERVAL = 0.05
PARTITION_WEIGHT = "10"  # the worker's weight of each partition on the hash ring


class Baseline:
    """Consume, transact, publish, ack."""

    def __init__(self, pool: asyncpg.Pool, events: AbstractExchange, concurrency: int) -> None:
        self._pool = pool
        self._events = events
        self._slots = asyncio.Semaphore(concurrency)
        self._confirmed: list[int] = []

    async def handle(self, message: AbstractIncomingMessage) -> None:
        """One command: validate, one transaction, confirmed publish, ack."""
        async with self._slots:
            try:
                command = parse_message(message.body)
                event_type, routing_key = EVENTS[command.type]
                key = command.message_id.replace("-", "")
                customer_id, account_number = f"B{key[:19]}", f"B{key[:15]}"
                eid = event_id(command.message_id, event_type)
                body = json.dumps(
                    {
                        "message_id": eid,
                        "type": event_type,
                        "version": 1,
                        "correlation_id": command.correlation_id or command.message_id,
                        "causation_id": command.message_id,
                        "occurred_at": datetime.now(UTC).isoformat(),
                        "payload": {"customer_id": customer_id, "account_number": account_number},
                    }
                ).encode()
                async with self._pool.acquire() as db, db.transaction():
                    await db.execute(INBOX, command.message_id, command.type, "applied")
                    await db.execute(DOMAIN, customer_id, f"{key}@bench.example", "Bench")
                    row_id = await db.fetchval(
                        OUTBOX, eid, event_type,
                        routing_key, command.message_id, body.decode(),
                    )  # fmt: skip
                await self._events.publish(
                    aio_pika.Message(
                        body,
                        content_type="application/json",
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        message_id=eid,
                        type=event_type,
                        correlation_id=command.message_id,
                        timestamp=datetime.now(UTC),
                    ),
                    routing_key=routing_key,
                )
                self._confirmed.append(row_id)
                await message.ack()
            except Exception as exc:
                print(f"baseline: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
                await asyncio.sleep(1)
                await message.nack(requeue=True)

    async def mark_forever(self) -> None:
        """Mark confirmed outbox rows as sent, in batches."""
        while True:
            await asyncio.sleep(MARK_INTERVAL)
            if self._confirmed:
                ids, self._confirmed = self._confirmed, []
                await self._pool.execute(MARK, ids)


async def main() -> int:
    """Run until SIGTERM or SIGINT."""
    env = os.environ
    prefetch = int(env.get("WORKER_PREFETCH", "16"))
    concurrency = int(env.get("WORKER_CONCURRENCY", "16"))
    database_url = env["WORKER_DATABASE_URL"]
    dsn = "postgresql://" + database_url.partition("://")[2]
    pool = await asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency)
    connection = await aio_pika.connect(env["WORKER_AMQP_URL"])
    consume = await connection.channel()
    await consume.set_qos(prefetch_count=prefetch)
    publish = await connection.channel(publisher_confirms=True)
    commands = await consume.declare_exchange(
        env.get("WORKER_COMMANDS_EXCHANGE", "fca.commands"),
        aio_pika.ExchangeType.TOPIC,
        durable=True,
    )
    events = await publish.declare_exchange(
        env.get("WORKER_EVENTS_EXCHANGE", "fca.events"), aio_pika.ExchangeType.TOPIC, durable=True
    )
    command_queue = env.get("WORKER_COMMAND_QUEUE", "fca.worker.commands")
    partitions = await consume.declare_exchange(
        partitions_exchange_name(command_queue),
        PARTITIONS_EXCHANGE_TYPE,
        durable=True,
        arguments={"hash-header": HEADER_ORDERING_KEY},
    )
    await partitions.bind(commands, routing_key=COMMAND_QUEUE_BINDING_KEY)
    queues = []
    for index in range(int(env.get("WORKER_PARTITIONS", "16"))):
        name = partition_queue_name(index, command_queue)
        queue = await consume.declare_queue(
            name,
            durable=True,
            arguments={"x-queue-type": "quorum", "x-single-active-consumer": True},
        )
        await queue.bind(partitions, routing_key=PARTITION_WEIGHT)
        queues.append(queue)
    baseline = Baseline(pool, events, concurrency)
    marker = asyncio.create_task(baseline.mark_forever())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    tags = [await queue.consume(baseline.handle) for queue in queues]
    print("baseline.started", flush=True)
    await stop.wait()
    for queue, tag in zip(queues, tags, strict=True):
        await queue.cancel(tag)
    marker.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await marker
    await connection.close()
    await pool.close()
    return 0


if __name__ == "__main__":
    if os.environ.get("WORKER_EVENT_LOOP") == "uvloop":
        import uvloop

        sys.exit(uvloop.run(main()))
    sys.exit(asyncio.run(main()))
