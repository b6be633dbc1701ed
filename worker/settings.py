"""Worker settings: one pydantic-settings class, every name prefixed ``WORKER_``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from contracts import topology

DEFAULT_SQLITE_PATH = Path("worker.db")


class Settings(BaseSettings):
    """Everything the worker reads from the environment (or a ``.env`` file)."""

    model_config = SettingsConfigDict(
        env_prefix="WORKER_", env_file=".env", extra="ignore", frozen=True
    )

    amqp_url: SecretStr = Field(
        SecretStr("amqp://guest:guest@localhost:5672/"),
        description="RabbitMQ URL; amqps:// for TLS; several comma-separated (one cluster).",
    )
    database_url: SecretStr = Field(
        SecretStr(f"sqlite+aiosqlite:///{DEFAULT_SQLITE_PATH}"),
        description="SQLAlchemy async URL; PostgreSQL via postgresql+asyncpg://.",
    )
    prefetch: int = Field(
        16, ge=1, le=65535, description="AMQP prefetch per partition (keep it at most 32)."
    )
    partitions: int = Field(
        topology.DEFAULT_PARTITIONS, ge=1, le=999, description="Partition queues of the input."
    )
    membership_interval: float = Field(
        2.0, gt=0, le=60, description="Seconds between heartbeats and re-balancing."
    )
    membership_liveness: float = Field(
        10.0, gt=0, le=600, description="A replica silent this long is gone (its partitions free)."
    )
    in_place_retries: int = Field(
        3, ge=0, le=20, description="Quick retries of a transient failure before a delay queue."
    )
    in_place_backoff: float = Field(
        0.1, ge=0, le=10, description="First in-place back-off in seconds (doubles, capped at 2 s)."
    )
    publish_timeout: float = Field(
        10.0, gt=0, le=300, description="Seconds to wait for a publish to be confirmed."
    )
    concurrency: int = Field(16, ge=1, le=1024, description="Commands handled at once.")
    processes: int = Field(
        1,
        ge=1,
        le=256,
        description="Worker processes on this host, each a replica with its share of partitions.",
    )
    group_commit: int = Field(
        32,
        ge=1,
        le=500,
        description="Most commands committed in one transaction (1: one transaction each).",
    )
    commit_runners: int = Field(
        2, ge=1, le=64, description="Group-commit transactions open at once."
    )
    max_attempts: int = Field(5, ge=1, le=100, description="Attempts before dead-lettering.")
    retry_delays: Annotated[tuple[int, ...], NoDecode] = Field(
        (1, 5, 30), description="Back-off delays in seconds, comma-separated."
    )
    max_body_bytes: int = Field(
        topology.DEFAULT_MAX_BODY_BYTES, ge=1024, description="Largest accepted body."
    )
    event_loop: Literal["asyncio", "uvloop"] = Field(
        "uvloop", description="Event loop implementation (uvloop: ~15% less CPU per message)."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    metrics_port: int = Field(9100, ge=0, le=65535, description="0 disables /metrics.")
    metrics_host: str = Field("0.0.0.0", description="Address the metrics/health server binds.")
    db_pool_size: int = Field(10, ge=1, le=200, description="Database connection pool size.")
    shutdown_timeout: float = Field(30.0, gt=0, description="Seconds to drain on SIGTERM.")
    outbox_poll_interval: float = Field(
        1.0, gt=0, description="Seconds between outbox relay sweeps."
    )
    outbox_grace_seconds: float = Field(
        5.0, ge=0, description="Age before the relay sweep republishes an unsent event."
    )
    inbox_retention_days: float = Field(
        30.0,
        gt=0,
        description="Days a handled message id is remembered (a redelivery within is a duplicate).",
    )
    dlq_replay_window_days: float = Field(
        14.0,
        gt=0,
        description="Days a dead letter may be replayed (older ones could apply twice).",
    )
    outbox_retention_hours: float = Field(
        24.0, gt=0, description="Hours a published event stays in the outbox table."
    )
    retention_interval: float = Field(
        3600.0, gt=0, description="Seconds between pruning rounds of the inbox and outbox."
    )
    reply_to_pattern: str = Field(
        topology.DEFAULT_REPLY_TO_PATTERN,
        description="A reply_to must match this regular expression to be answered.",
    )
    dlq_audit_log: Path = Field(
        Path("dlq-audit.log"), description="Where `worker dlq` appends its audit records."
    )
    commands_exchange: str = topology.COMMANDS_EXCHANGE
    command_queue: str = topology.COMMAND_QUEUE
    events_exchange: str = topology.EVENTS_EXCHANGE
    dead_letter_queue: str = topology.DEAD_LETTER_QUEUE

    @property
    def amqp_urls(self) -> list[str]:
        """The broker URLs, in the order they are tried."""
        return [u.strip() for u in self.amqp_url.get_secret_value().split(",") if u.strip()]

    @field_validator("membership_liveness")
    @classmethod
    def _liveness_spans_heartbeats(cls, value: float, info: ValidationInfo) -> float:
        interval = info.data.get("membership_interval", 2.0)
        if value < 3 * interval:
            raise ValueError("must be at least three membership intervals")
        return value

    @field_validator("dlq_replay_window_days")
    @classmethod
    def _replays_inside_the_inbox_window(cls, value: float, info: ValidationInfo) -> float:
        # A replayed command must still find its message id in the inbox if it was applied
        # before (a replay killed half-way, a dead letter copied twice): the window in which
        # dead letters may be replayed must end a day before the inbox forgets.
        inbox = info.data.get("inbox_retention_days", 30.0)
        if value + 1 > inbox:
            raise ValueError(
                f"must be at least one day shorter than WORKER_INBOX_RETENTION_DAYS ({inbox:g})"
            )
        return value

    @field_validator("reply_to_pattern")
    @classmethod
    def _a_regular_expression(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return value

    @field_validator("retry_delays", mode="before")
    @classmethod
    def _split_delays(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",") if p.strip()]
            return tuple(int(p) for p in parts)
        return value

    @field_validator("retry_delays")
    @classmethod
    def _positive_delays(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(d <= 0 for d in value):
            raise ValueError("must be one or more positive whole seconds, e.g. 1,5,30")
        return value
