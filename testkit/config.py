"""What a worker process is started with: its RabbitMQ names and its ``WORKER_*`` settings.

``Topology(commands_exchange, command_queue, events_exchange, dead_letter_queue, partitions)``
    RabbitMQ names (defaults = the contract's). ``Topology.unique(tag)`` gives fresh names;
    ``.env()`` the ``WORKER_*`` settings; ``.partition_queues()`` (the worker's input queues,
    ``<command_queue>.p00`` …), ``.delay_queue(seconds)`` (v2 quorum delay queues),
    ``.retry_queue(seconds)`` (contract v1's classic ones); ``.queues(retry_delays)``.
``WorkerEnv(amqp_url, database_url, topology=Topology(), overrides={})``
    Everything a worker is started with. ``.environ()`` → the process environment
    (``WORKER_LOG_FORMAT=json``, ``WORKER_METRICS_PORT=0`` unless overridden);
    ``.with_overrides(WORKER_CONCURRENCY="4", …)`` → a copy with more settings;
    ``.retry_delays`` → the delays its retry queues are named after.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from testkit.factories import unique_token

__all__ = ["Topology", "WorkerEnv"]


@dataclass(frozen=True)
class Topology:
    """The RabbitMQ names a worker uses (each one a ``WORKER_*`` setting)."""

    commands_exchange: str = "fca.commands"
    command_queue: str = "fca.worker.commands"
    events_exchange: str = "fca.events"
    dead_letter_queue: str = "fca.worker.commands.dlq"
    partitions: int = 16

    @classmethod
    def unique(cls, tag: str | None = None, *, partitions: int = 16) -> Topology:
        """Fresh names nobody else uses: ``e2e.<tag>.commands``, ``e2e.<tag>.worker.commands``…"""
        tag = tag or unique_token()
        return cls(
            commands_exchange=f"e2e.{tag}.commands",
            command_queue=f"e2e.{tag}.worker.commands",
            events_exchange=f"e2e.{tag}.events",
            dead_letter_queue=f"e2e.{tag}.worker.commands.dlq",
            partitions=partitions,
        )

    def env(self) -> dict[str, str]:
        """These names as worker settings."""
        return {
            "WORKER_COMMANDS_EXCHANGE": self.commands_exchange,
            "WORKER_COMMAND_QUEUE": self.command_queue,
            "WORKER_EVENTS_EXCHANGE": self.events_exchange,
            "WORKER_DEAD_LETTER_QUEUE": self.dead_letter_queue,
            "WORKER_PARTITIONS": str(self.partitions),
        }

    def partition_queues(self) -> list[str]:
        """The worker's input queues, one per partition."""
        return [f"{self.command_queue}.p{i:02d}" for i in range(self.partitions)]

    @property
    def partitions_exchange(self) -> str:
        """The consistent-hash exchange that feeds the partitions."""
        return f"{self.command_queue}.partitions"

    def delay_queue(self, delay_seconds: int) -> str:
        """The worker's quorum delay queue for ``delay_seconds``."""
        return f"{self.command_queue}.delay.{delay_seconds}s"

    def retry_queue(self, delay_seconds: int) -> str:
        """Contract v1's classic delay queue for ``delay_seconds`` (a v2 worker drains it)."""
        return f"{self.command_queue}.retry.{delay_seconds}s"

    def queues(self, retry_delays: Iterable[int] = (1, 5, 30)) -> list[str]:
        """Every queue a worker with these names declares (given its retry delays)."""
        return [
            *self.partition_queues(),
            self.dead_letter_queue,
            *(self.delay_queue(d) for d in retry_delays),
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
