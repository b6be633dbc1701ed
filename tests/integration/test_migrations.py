"""The Alembic migrations: empty → head → base → head on SQLite and PostgreSQL, matching the models.

Each test gets a database of its own: a SQLite file in ``tmp_path``, or a second PostgreSQL
database created next to the session's one and dropped afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from testkit.sandbox import create_database, drop_database
from worker.db.migrate import alembic_config, upgrade
from worker.db.models import Base
from worker.db.session import create_session_factory
from worker.repositories import CustomerRepository

pytestmark = pytest.mark.integration

# SQLite cannot reflect an index on an expression (``updated_at DESC``), so autogenerate
# always reports it as removed and re-added there; PostgreSQL reflects it fine.
SQLITE_UNREFLECTABLE_INDEXES = frozenset({"ix_conversations_customer_updated"})


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a brand-new, empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"
        return
    server_url = request.getfixturevalue("postgres_url")
    url = create_database(server_url, prefix="worker_migrations_")
    try:
        yield url
    finally:
        drop_database(url)


@pytest.fixture
async def engine(empty_database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the empty database that holds no connection between statements."""
    engine = create_async_engine(empty_database_url, poolclass=NullPool)
    try:
        yield engine
    finally:
        await engine.dispose()


async def _alembic(name: str, url: str, revision: str) -> None:
    """Run an Alembic command off the loop (its env calls ``asyncio.run``)."""
    await asyncio.to_thread(getattr(command, name), alembic_config(url), revision)


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))


async def _current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(
            lambda c: MigrationContext.configure(c).get_current_revision()
        )


def _schema_differences(connection: Connection) -> list[Any]:
    dialect = connection.dialect.name
    context = MigrationContext.configure(
        connection,
        # SQLite reflects server defaults as raw SQL text ('' vs ""), so they are only
        # compared where reflection is exact.
        opts={"compare_type": True, "compare_server_default": dialect == "postgresql"},
    )
    differences = compare_metadata(context, Base.metadata)
    if dialect != "sqlite":
        return differences
    return [
        diff
        for diff in differences
        if not (
            isinstance(diff, tuple)
            and diff[0] in ("add_index", "remove_index")
            and diff[1].name in SQLITE_UNREFLECTABLE_INDEXES
        )
    ]


async def test_upgrade_from_empty_to_head_creates_every_table(
    empty_database_url: str, engine: AsyncEngine
) -> None:
    assert await _tables(engine) == set()

    await asyncio.to_thread(upgrade, empty_database_url)

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert await _tables(engine) == set(Base.metadata.tables) | {"alembic_version"}
    assert await _current_revision(engine) == head


async def test_the_migrated_schema_matches_the_models(
    empty_database_url: str, engine: AsyncEngine
) -> None:
    await asyncio.to_thread(upgrade, empty_database_url)

    async with engine.connect() as connection:
        differences = await connection.run_sync(_schema_differences)

    assert differences == []


async def test_downgrade_to_base_and_upgrade_again_round_trips(
    empty_database_url: str, engine: AsyncEngine
) -> None:
    await _alembic("upgrade", empty_database_url, "head")

    await _alembic("downgrade", empty_database_url, "base")
    assert await _tables(engine) <= {"alembic_version"}
    assert await _current_revision(engine) is None

    await _alembic("upgrade", empty_database_url, "head")
    assert await _tables(engine) == set(Base.metadata.tables) | {"alembic_version"}
    async with create_session_factory(engine)() as session:
        # Business-id counters (PostgreSQL sequences) came back with the schema.
        assert await CustomerRepository(session).next_business_id() == "CUST-000001"
