"""The ``worker`` command line: run, db, send, contract, dlq (one module each)."""

from __future__ import annotations

import click

from worker.cli.contract import contract
from worker.cli.db import db
from worker.cli.dlq import dlq
from worker.cli.run import run
from worker.cli.send import send


@click.group()
def main() -> None:
    """fca-worker: applies commands from RabbitMQ and publishes their events."""


for command in (run, db, send, contract, dlq):
    main.add_command(command)

__all__ = ["main"]
