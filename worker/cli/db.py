"""``worker db``: schema commands."""

from __future__ import annotations

import click

from worker.cli.common import load_settings


@click.group()
def db() -> None:
    """Database schema commands."""


@db.command()
def upgrade() -> None:
    """Apply every migration (creates the schema on an empty database)."""
    from worker.db.migrate import upgrade as upgrade_schema
    from worker.observability.logging import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        upgrade_schema(settings.database_url.get_secret_value())
    except Exception as exc:
        raise click.ClickException(f"migration failed: {type(exc).__name__}") from None
    click.echo("database is up to date", err=True)
